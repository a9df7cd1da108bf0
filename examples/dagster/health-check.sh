#!/bin/sh
# The daemon's health check for tenure (--health-cmd): healthy while every daemon that
# Dagster requires wrote a heartbeat to the instance's storage within the last 30 s (Dagster's
# heartbeat interval) plus DAGSTER_DAEMON_HEARTBEAT_TOLERANCE. With its default tolerance of
# 1800 s, `dagster-daemon liveness-check` would call a daemon live for half an hour after it
# hung; 45 s makes a hung or stopped daemon fail within 75 s. (15 s failed healthy daemons:
# some of Dagster's daemon threads write their heartbeat only when their loop yields, up to a
# minute apart.) Right after a failover the heartbeats of the previous daemon are still fresh,
# which is why tenure waits --health-grace (90 s, longer than 75 s) before the first check: by
# then only the new daemon's heartbeats can be.
DAGSTER_DAEMON_HEARTBEAT_TOLERANCE="${DAGSTER_HEALTH_TOLERANCE:-45}" \
    exec dagster-daemon liveness-check
