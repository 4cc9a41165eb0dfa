"""The ceiling: fleetlog's HTTP stack with nothing behind it, to measure the ingest path against.

FastAPI on uvicorn (uvloop, httptools, the same number of processes), ingest paths that read the
whole body and answer 200: what is left of a request's cost when validation, queueing and
storage cost nothing. Started by `fleetlog bench --spawn bare`; never part of the product API.
"""

from fastapi import FastAPI, Request, Response

ANSWER = b'{"status":"queued"}'


def create_app() -> FastAPI:
    app = FastAPI(title="fleetlog bare ceiling", openapi_url=None)

    @app.post("/api/log")
    @app.post("/api/logs/batch")
    async def accept(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
