"""What every experiment launcher shares: its flags and its start-up.

Each launcher (``python -m experiments.<system>.<job>``) takes ``--config`` (an
``ml_collections`` config file, ``path.py[:mode]``, overridable with ``--config.<field>=...``)
and ``--workdir``; re-running with the same work directory resumes. :func:`start` quiets the
libraries' INFO logging unless ``--verbosity`` is given and joins JAX's multi-controller runtime
when configured (:func:`jaxface.sharding.initialize_distributed`).
"""

import jax
from absl import flags, logging
from ml_collections import config_flags

from jaxface.sharding import initialize_distributed

FLAGS = flags.FLAGS


def define_flags(workdir_help: str) -> None:
    """Defines the required ``--config`` and ``--workdir`` flags."""
    config_flags.DEFINE_config_file(
        "config", None, "Experiment configuration file.", lock_config=True
    )
    flags.DEFINE_string("workdir", None, workdir_help)
    flags.mark_flags_as_required(["config", "workdir"])


def start() -> None:
    """Sets the log level (orbax is chatty at INFO) and joins the multi-controller runtime."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    initialize_distributed()
    logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
                 jax.device_count())
