"""Running a job: the pipeline, landing exactly once, dispatch to the queue, the job store."""
