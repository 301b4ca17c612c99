"""The one home of the file names in a training run's output directory."""

from textproj.model_file import MODEL_FILENAME

MODEL_NAME = MODEL_FILENAME  # the on-device projection model (the only file a device needs)
TRAINER_WEIGHTS = "trainer.npz"  # the trainer's arrays
TRAINER_HEADER = "trainer.json"  # the trainer's labels, configs and thresholds
METRICS_NAME = "metrics.json"  # scores, bytes, seconds, config, history
CHECKPOINT_NAME = "checkpoint.pt"  # what a resume needs; gone when the run completes
CHECKPOINT_EVERY_SECONDS = 30.0  # train's default: checkpoint at the first epoch end after this
