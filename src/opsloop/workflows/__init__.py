"""Work that crosses domains and runs by itself: the retraining loop's driver and the scheduler
that runs the due monitor checks, alert deliveries, pipeline triggers and loop runs.

A floor of its own, above every domain and below the client: ``Client.scheduler()`` returns
the scheduler, so it cannot live in the application layer on top.
"""
