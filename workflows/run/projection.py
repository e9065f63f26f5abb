"""The Run as the API shows it, from the workflow's spec and state (its `details` query)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ferry import search_attributes as sa
    from ferry.models.api import RunPublic
    from ferry.models.common import ANY_TARGET
    from ferry.models.state import RunSpec, RunState


def public_view(spec: RunSpec, st: RunState) -> RunPublic:
        duration = st.worked_seconds if st.started_at else None
        return RunPublic(
            id=spec.id, title=st.title, status=st.status, engine=spec.engine, mode=spec.mode,
            target=st.target, target_requested=ANY_TARGET if spec.any_host else spec.target,
            image=st.image, instructions=spec.instructions,
            created_at=st.created_at, started_at=st.started_at, completed_at=st.completed_at,
            duration_seconds=duration, working_since=st.working_since, devboxes=st.devboxes,
            summary=st.summary, error=st.error,
            running=st.running, step_count=st.next_seq - 1,
            temporal_workflow_id=workflow.info().workflow_id,
            questions=st.questions if st.phase == "waiting" else None,
            waiting_since=st.asked_at if st.phase == "waiting" else None,
            queued_messages=len(st.inbox), keep_alive_until=st.keep_alive_until,
            from_run=spec.from_run, keep_alive_seconds=spec.keep_alive.total_seconds(),
            idle_timeout_seconds=spec.idle_timeout.total_seconds(),
            question_timeout_seconds=spec.question_timeout.total_seconds(),
            repo=spec.repo, branch=spec.branch, ticket_url=spec.ticket_url,
            ticket_title=st.ticket.title if st.ticket else None, workspace=st.workspace,
            schedule_id=workflow.info().typed_search_attributes.get(sa.SCHEDULE),
            trigger=workflow.info().typed_search_attributes.get(sa.TRIGGER),
            attempt=st.attempt, attempts=st.attempts, accepted=st.accepted,
            on_timeout=spec.on_timeout, engine_used=st.engine, model=spec.model,
            effort=spec.effort, permission_mode=spec.permission_mode, session_id=st.session_id,
            usage=st.usage,
            turn_usage=st.turn_usage, run_as_root=spec.run_as_root, env=spec.env,
            network=st.devboxes[-1].network if st.devboxes else spec.network,
            artifacts=spec.artifacts,
            budgets={k: v for k, v in {
                "max_turns": spec.max_turns, "max_cost_usd": spec.max_cost_usd,
                "max_duration_seconds": spec.max_duration.total_seconds() if spec.max_duration
                else None,
                "turn_timeout_seconds": spec.turn_timeout.total_seconds() if spec.turn_timeout
                else None, "engine_max_turns": spec.engine_max_turns}.items() if v is not None},
        )
