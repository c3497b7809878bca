"""``python -m fastvid_cli.lmms_eval_plugin``: print the folder to pass to lmms-eval's ``--include_path``."""

from . import tasks_dir

print(tasks_dir())
