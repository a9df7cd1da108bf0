"""The recipe's Dagster definitions: one job, a schedule that launches it every minute, and a
sensor that looks every 30 seconds. Small on purpose: the job ends in well under a second, so a
failover rarely finds a run in flight (docs/dagster.md says what happens to one that is)."""

import os

import dagster as dg


@dg.op
def record_tick(context: dg.OpExecutionContext) -> None:
    # The fencing token of the daemon that launched this run: the runs of a later leader
    # carry a higher one (docs/operations.md: Fencing tokens).
    context.log.info("tick by node %s, fencing token %s",
                     os.environ.get("TENURE_NODE_ID", "?"),
                     os.environ.get("TENURE_FENCING_TOKEN", "?"))


@dg.job
def tick_job() -> None:
    record_tick()


every_minute = dg.ScheduleDefinition(
    name="every_minute",
    job=tick_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(job=tick_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def quiet_sensor(context: dg.SensorEvaluationContext):
    # A sensor that only looks: its ticks show in the UI and in the tick records, and it
    # keeps a sensor evaluation in flight now and then, which a stop must wait for.
    return dg.SkipReason("nothing new")


defs = dg.Definitions(jobs=[tick_job], schedules=[every_minute], sensors=[quiet_sensor])
