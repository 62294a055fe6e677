"""course_utils: the small helper package of the course
'Transformers, from attention math to fine-tuning'.

One module per concern; notebooks import it, it never knows about a notebook.
"""

from .attention import attention
from .checkpoints import STANDINS, checkpoint, hub_answers, standin_dir
from .checks import (
    answer_digest,
    check_answer,
    check_attention_weights,
    check_left_padding_attention,
    check_function,
    check_hidden_answer,
    check_mask_word,
    check_perplexity,
    check_position_shift,
    check_tensor,
)
from .environment import (
    cache_dir,
    env_flag,
    environment_report,
    get_device,
    is_offline,
    mixed_precision,
    print_environment,
    url_answers,
    quiet_hf_logs,
    require_version,
    seed_everything,
    setup_notebook,
)
from .plotting import plot_attention, plot_lines, plot_matrix
from . import cache  # the one build-verify-cache road (lock, manifest, atomic publish)
from . import diagrams  # block diagrams drawn by code (notebook 02)
from . import data  # course_utils.data.load_imdb(); the CLI course_utils.finetune is not imported here
from .masks import causal_mask, combine_masks, decoder_mask, masked_softmax, padding_mask
from .positional import alibi_bias, alibi_slopes, apply_rotary, rotary_cos_sin, rotate_half, sinusoidal_encoding
from .layers import MultiHeadAttention, merge_heads, split_heads
from . import mlm  # BERT/BART pretraining data recipes (notebook 04): course_utils.mlm.mask_tokens, ...
from . import pretrain  # the stand-ins' pretraining; pretrain.heldout_sentences(), perplexity(), one_mask_accuracy()

__version__ = "0.1.0"
