"""The workflow stage: the one state-machine engine, approvals compiled onto it, tasks,
the timeline, timers and notifications. docs/workflow.md describes it for consultants."""
