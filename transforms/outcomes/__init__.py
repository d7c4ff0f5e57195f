"""A job's final outcome, told to whoever waits for it: CI360 (an external event carrying the call's
responseTrackingCode) and the data team (an EventBridge event). Beside the sink: it never lands anything
and never imports ``transforms.jobs``; ``transforms.jobs.finish`` decides when an outcome is final and
reports it once."""
