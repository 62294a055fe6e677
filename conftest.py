"""pytest configuration shared by the unit tests and the nbval notebook run.

The canonical environment is applied at import time, before nbval starts any kernel,
so `pytest` alone reproduces the environment the stored outputs were made in.
"""

from tests import canonical_env

canonical_env.apply()
