"""Retention rules, their preview and a pass on demand: for admins (docs/lifecycle.md)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from fleetlog.api.errors import documented
from fleetlog.api.security import AUTH_RESPONSES, require
from fleetlog.auth.principals import Scope
from fleetlog.retention.schemas import ReportOut, RuleIn, RuleOut, RulesOut
from fleetlog.retention.service import Retention
from fleetlog.store.tables import MAX_ID

router = APIRouter(
    prefix="/api/retention",
    tags=["retention"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses={
        **AUTH_RESPONSES,
        **documented(
            {
                404: "No such rule",
                409: "A rule for that level and prefix exists, or a pass is running already",
                422: "A field breaks its rule",
            }
        ),
    },
)


async def get_retention(request: Request) -> Retention:
    retention: Retention = request.app.state.services.retention
    return retention


RetentionDep = Annotated[Retention, Depends(get_retention)]
RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="The rule's id")]


@router.get("/rules", response_model=RulesOut)
async def list_rules(retention: RetentionDep) -> RulesOut:
    stored = await retention.rules.list()
    effective = await retention.effective_rules()
    return RulesOut(
        rules=[RuleOut.stored(rule) for rule in stored],
        effective=[RuleOut.of(rule) for rule in effective],
    )


@router.post("/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
async def add_rule(body: RuleIn, retention: RetentionDep) -> RuleOut:
    """Add a rule; without level and prefix it is the default rule."""
    return RuleOut.stored(await retention.rules.add(body.rule()))


@router.put("/rules/{rule_id}", response_model=RuleOut)
async def replace_rule(rule_id: RuleId, body: RuleIn, retention: RetentionDep) -> RuleOut:
    return RuleOut.stored(await retention.rules.replace(rule_id, body.rule()))


@router.delete("/rules/{rule_id}", response_model=RuleOut)
async def remove_rule(rule_id: RuleId, retention: RetentionDep) -> RuleOut:
    """Remove a rule; the answer is the rule removed."""
    return RuleOut.stored(await retention.rules.remove(rule_id))


@router.get("/preview", response_model=ReportOut)
async def preview(retention: RetentionDep) -> ReportOut:
    """What a pass now would remove, per rule, without removing anything."""
    return ReportOut.of(await retention.preview())


@router.post("/apply", response_model=ReportOut)
async def apply(retention: RetentionDep) -> ReportOut:
    """Run a pass now and answer what it removed (409 while another pass runs)."""
    return ReportOut.of(await retention.apply())
