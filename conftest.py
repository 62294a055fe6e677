"""pytest configuration shared by the unit tests and the nbval notebook run.

The canonical environment is applied at import time, before nbval starts any kernel,
so `pytest` alone reproduces the environment the stored outputs were made in.
"""

from nbval.kernel import RunningKernel

from tests import canonical_env

canonical_env.apply()


def _execute_like_jupyter(self, cell_input, allow_stdin=None):
    """Run a cell as Jupyter does, with store_history=True.

    nbval 0.10+ executes with store_history=False, and IPython then ignores a trailing
    `;` (nbval issue #194, IPython issue #14162), so `fig = plot(...); ax.set_title(...);`
    would show output under test that Jupyter (and `make outputs`) hides.
    """
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


RunningKernel.execute_cell_input = _execute_like_jupyter
