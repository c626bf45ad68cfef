"""What processes cost, from the kernel's own numbers wherever it keeps them.

* `Monitor`: a window over a process tree (the model server during one side of one task): kernel CPU
  seconds, peak RSS from the kernel's high-water marks, GPU and energy where exposed.
* `measure_command`: runs one command and reports what /usr/bin/time would (wait4's rusage), plus the
  Monitor's GPU and energy figures.
"""

from sizeup.monitor.measure import MeasureError, MeasureResult, measure_command, measure_result_dict
from sizeup.monitor.window import Monitor

__all__ = ["Monitor", "MeasureError", "MeasureResult", "measure_command", "measure_result_dict"]
