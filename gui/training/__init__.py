"""Training in the app (issue #7): the settings form, the run controls and live plots in the Training
dock, results after a run (confusion matrix, per-class metrics, mistakes, the bias/variance doctor),
the live preview of a node's output, training health drawn on the canvas, and the export dialog.

Runs train in the engine's training process (``engine.training.remote``); a reader thread appends
their events to a buffer (``worker``) that ``controller.RunController`` drains with a 10 Hz timer (pull,
not push), so the UI thread never waits on training. Per-node statistics come from ``engine.inspect``. ``TrainingUI`` (``ui``) adds the
docks and the Train menu to the main window.
"""
