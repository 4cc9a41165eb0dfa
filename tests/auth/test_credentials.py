"""Keys and users in the store: hashed at rest, validated, revoked, renamed never."""

import hashlib

import pytest
from sqlalchemy import select

from fleetlog.auth.credentials import KeyRequest, key_reference
from fleetlog.auth.principals import Role, Scope
from fleetlog.errors import Conflict, InvalidPayload, NotFound, Unauthorized
from fleetlog.store.tables import api_keys, users
from tests.fixtures.auth import PASSWORD, credentials, secure_settings


@pytest.fixture
async def store(tmp_path):
    async with credentials(secure_settings(tmp_path)) as store:
        yield store


class TestKeys:
    async def test_only_the_hash_is_stored(self, store):
        key, secret = await store.create_key(KeyRequest("cams", Scope.INGEST))
        async with store.keys.engine.connect() as conn:
            row = (await conn.execute(select(api_keys))).mappings().one()
        assert secret.startswith("flk_")
        assert len(secret) > 40
        assert secret not in row.values()
        assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
        assert secret.startswith(key.hint)

    async def test_a_key_is_found_by_its_secret_until_revoked(self, store):
        key, secret = await store.create_key(KeyRequest("cams", Scope.INGEST))
        assert (await store.keys.active(secret)) == key
        await store.keys.revoke(key.id)
        assert await store.keys.active(secret) is None
        assert await store.exist()

    async def test_revoking_an_unknown_key_is_not_found(self, store):
        with pytest.raises(NotFound):
            await store.keys.revoke("nobody")
        with pytest.raises(NotFound):
            await store.revoke_key("id:99")

    async def revoked(self, store) -> dict[str, bool]:
        return {key.name: key.revoked_at is not None for key in await store.keys.list()}

    async def test_a_name_of_digits_names_that_key_never_an_id(self, store):
        admin, _ = await store.create_key(KeyRequest("admin", Scope.ADMIN))
        await store.create_key(KeyRequest(str(admin.id), Scope.READ))
        revoked = await store.revoke_key(str(admin.id))
        assert revoked.name == str(admin.id)
        assert await self.revoked(store) == {"admin": False, str(admin.id): True}

    async def test_the_id_prefix_names_a_key_by_its_id(self, store):
        cams, _ = await store.create_key(KeyRequest("cams", Scope.INGEST))
        await store.create_key(KeyRequest(str(cams.id), Scope.READ))
        assert (await store.revoke_key(f"id:{cams.id}")).name == "cams"
        assert await self.revoked(store) == {"cams": True, str(cams.id): False}

    @pytest.mark.parametrize(
        ("reference", "meant"),
        [("id:7", 7), ("id:2147483647", 2**31 - 1), ("7", "7"), ("cams", "cams"), ("²", "²")],
    )
    def test_references(self, reference, meant):
        assert key_reference(reference) == meant

    @pytest.mark.parametrize(
        "reference", ["id:", "id:x", "id:²", "id:١", "id:0", "id:07", "id:-1", "id:2147483648"]
    )
    def test_a_bad_id_is_refused_naming_the_rule(self, reference):
        with pytest.raises(InvalidPayload) as refused:
            key_reference(reference)
        assert refused.value.detail[0]["field"] == "name"
        assert refused.value.detail[0]["rule"] == "key_id"

    async def test_names_are_unique(self, store):
        await store.create_key(KeyRequest("cams", Scope.INGEST))
        with pytest.raises(Conflict):
            await store.create_key(KeyRequest("cams", Scope.READ))

    @pytest.mark.parametrize(
        "request_",
        [
            KeyRequest("", Scope.READ),
            KeyRequest("has space", Scope.READ),
            KeyRequest("admin", Scope.ADMIN, device_prefix="cam-"),
            KeyRequest("cams", Scope.INGEST, device_prefix="c" * 51),
            KeyRequest("cams", Scope.INGEST, rate=0.0001),
            KeyRequest("cams", Scope.INGEST, rate=5.0, burst=0),
        ],
    )
    async def test_bad_requests_are_refused(self, store, request_):
        with pytest.raises(InvalidPayload):
            await store.create_key(request_)

    @pytest.mark.parametrize(
        ("rate", "burst", "kept"),
        [(None, None, (None, None)), (2.5, None, (2.5, 3)), (None, 40, (40.0, 40)), (1, 9, (1, 9))],
    )
    async def test_rate_or_burst_alone_implies_the_other(self, store, rate, burst, kept):
        key, _ = await store.create_key(KeyRequest("cams", Scope.INGEST, rate=rate, burst=burst))
        assert (key.rate, key.burst) == kept


class TestUsers:
    async def test_the_password_is_stored_as_argon2(self, store):
        await store.create_user("ann", role=Role.ADMIN, password=PASSWORD)
        async with store.users.engine.connect() as conn:
            row = (await conn.execute(select(users))).mappings().one()
        assert row["password_hash"].startswith("$argon2id$")

    async def test_sign_in(self, store):
        created = await store.create_user("ann", role=Role.READER, password=PASSWORD)
        assert await store.sign_in("ann", PASSWORD) == created

    @pytest.mark.parametrize(("name", "password"), [("ann", "wrong password"), ("bob", PASSWORD)])
    async def test_a_wrong_name_or_password_is_the_same_refusal(self, store, name, password):
        await store.create_user("ann", role=Role.READER, password=PASSWORD)
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            await store.sign_in(name, password)

    async def test_a_new_password_bumps_the_token_version(self, store):
        created = await store.create_user("ann", role=Role.READER, password=PASSWORD)
        changed = await store.set_password("ann", "another good password")
        assert changed.token_version == created.token_version + 1
        with pytest.raises(Unauthorized):
            await store.sign_in("ann", PASSWORD)

    async def test_short_passwords_are_refused(self, store):
        with pytest.raises(InvalidPayload):
            await store.create_user("ann", role=Role.READER, password="short")

    async def test_deleting_an_unknown_user_is_not_found(self, store):
        with pytest.raises(NotFound):
            await store.users.delete("nobody")
