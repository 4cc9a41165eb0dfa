"""Alert rules and webhook targets (admin), the alerts and their history (read), and the
webhook job queue (admin): docs/lifecycle.md."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from fleetlog.alerts.jobs_view import JobsOut
from fleetlog.alerts.rules import (
    AlertsOut,
    CreatedTargetOut,
    RuleIn,
    RuleOut,
    TargetIn,
    TargetOut,
)
from fleetlog.alerts.runtime import Alerting
from fleetlog.api.errors import documented
from fleetlog.api.security import AUTH_RESPONSES, Reader, require
from fleetlog.auth.principals import Scope
from fleetlog.records import NUL_FREE


def get_alerting(request: Request) -> Alerting:
    alerting: Alerting = request.app.state.alerting
    return alerting


AlertingDep = Annotated[Alerting, Depends(get_alerting)]
Name = Annotated[str, Path(min_length=1, max_length=64), NUL_FREE]

router = APIRouter(tags=["alerts"], responses=AUTH_RESPONSES)
admin = APIRouter(
    tags=["alerts"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses={
        **AUTH_RESPONSES,
        **documented(
            {
                404: "No such rule or target",
                409: "The name is taken, the target is in use, or alerts need Redis here",
                422: "A field breaks its rule",
            }
        ),
    },
)


@router.get("/api/alerts", response_model=AlertsOut)
async def list_alerts(
    alerting: AlertingDep,
    reader: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="Notifications of history")] = 100,
) -> AlertsOut:
    """The alerts (pending, firing, resolved) per rule and group, and the notifications sent,
    newest first, with each delivery's outcome."""
    reader.check_fleet_read()
    return AlertsOut(
        evaluated=alerting.evaluated,
        alerts=await alerting.store.states(),
        history=await alerting.store.history(limit=limit),
    )


@admin.get("/api/alerts/rules", response_model=list[RuleOut], response_model_by_alias=True)
async def list_rules(alerting: AlertingDep) -> list[RuleOut]:
    return await alerting.store.rules()


@admin.post(
    "/api/alerts/rules",
    response_model=RuleOut,
    response_model_by_alias=True,
    status_code=status.HTTP_201_CREATED,
)
async def create_rule(body: RuleIn, alerting: AlertingDep) -> RuleOut:
    alerting.check_evaluated()
    return await alerting.store.create_rule(body)


@admin.get("/api/alerts/rules/{name}", response_model=RuleOut, response_model_by_alias=True)
async def show_rule(name: Name, alerting: AlertingDep) -> RuleOut:
    return (await alerting.store.rules(name))[0]


@admin.put("/api/alerts/rules/{name}", response_model=RuleOut, response_model_by_alias=True)
async def replace_rule(name: Name, body: RuleIn, alerting: AlertingDep) -> RuleOut:
    """Replace a rule (it may be renamed); its alerts resolve if it no longer holds for them."""
    return await alerting.store.replace_rule(name, body)


@admin.delete("/api/alerts/rules/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_rule(name: Name, alerting: AlertingDep) -> Response:
    """Remove a rule and its alerts (no resolved notification is sent); its history stays."""
    await alerting.store.remove_rule(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin.get("/api/alerts/targets", response_model=list[TargetOut])
async def list_targets(alerting: AlertingDep) -> list[TargetOut]:
    return await alerting.store.targets()


@admin.post(
    "/api/alerts/targets", response_model=CreatedTargetOut, status_code=status.HTTP_201_CREATED
)
async def create_target(body: TargetIn, alerting: AlertingDep) -> CreatedTargetOut:
    """Create a webhook; the answer holds its signing secret, the only time it is shown."""
    return await alerting.store.create_target(body)


@admin.delete("/api/alerts/targets/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_target(name: Name, alerting: AlertingDep) -> Response:
    """Remove a webhook no rule sends to."""
    await alerting.store.remove_target(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin.get("/api/admin/jobs", response_model=JobsOut)
async def list_jobs(alerting: AlertingDep) -> JobsOut:
    """The webhook job queue: waiting, delayed for a retry, and dead-lettered jobs, with the
    last of each (dramatiq-dashboard does not run on dramatiq 2)."""
    alerting.check_evaluated()
    assert alerting.jobs is not None
    return await alerting.jobs.queues()


router.include_router(admin)
