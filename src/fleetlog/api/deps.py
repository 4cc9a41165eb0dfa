"""Dependencies of the routes, as `Annotated` aliases so a signature reads like a sentence."""

from typing import Annotated

from fastapi import Depends, Request

from fleetlog.api.services import Services
from fleetlog.config import Settings
from fleetlog.counts import CountQuery
from fleetlog.ingest import Ingest
from fleetlog.query import LogQuery


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> Settings:
    return (await get_services(request)).settings


async def get_ingest(request: Request) -> Ingest:
    return (await get_services(request)).ingest


async def get_query(request: Request) -> LogQuery:
    return (await get_services(request)).query


async def get_counts(request: Request) -> CountQuery:
    return (await get_services(request)).counts


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
IngestDep = Annotated[Ingest, Depends(get_ingest)]
QueryDep = Annotated[LogQuery, Depends(get_query)]
CountsDep = Annotated[CountQuery, Depends(get_counts)]
