"""Chart-to-code as a registered training task (`task=chart2code`, the default).

Only the registration record: finding the task by name (`vlrl train --help` lists every
task's options) must not import torch or the task's code, which load when it runs. Its
options live in the run config's reward, render, data and sft sections.
"""

from vlrl.tasks.registry import TaskSpec

TASK = TaskSpec(
    name="chart2code",
    build="vlrl.tasks.chart2code_rl:Chart2CodeRL",
    help="chart image -> matplotlib code, rendered and scored (MSRL's GRPO curriculum)",
)
