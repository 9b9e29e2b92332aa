"""Run by test_distributed.py under `torchrun --nproc_per_node 2` (and alone): train
with the settings given as JSON, then save this process's trainable weights."""

import json
import sys

from safetensors.torch import save_file

from uprm.training import Trainer, make_config

trainer = Trainer(make_config(**json.loads(sys.argv[1])))
run = trainer.fit()
rank = trainer.acc.process_index
state = trainer.acc.unwrap_model(trainer.model).trainable_state_dict()
save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(run / f"rank{rank}.safetensors"))
print(f"rank {rank} of {trainer.acc.num_processes}: {trainer.acc.distributed_type}")
