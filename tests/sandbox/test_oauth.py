"""Visma Connect OAuth and Dinero's legacy API-key grant, as a client meets them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dinero_sandbox import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_LOGIN,
    FakeClock,
    Sandbox,
)

from tests.sandbox.conftest import (
    REDIRECT_URI,
    api_key_grant,
    approve,
    authorize_params,
    bearer,
    callback_params,
    error_code,
    exchange_code,
    parse_form,
    pkce_pair,
    refresh,
)


async def test_consent_page_is_a_parseable_form_listing_the_logins_organizations(
    client: httpx.AsyncClient,
) -> None:
    _, challenge = pkce_pair()
    page = await client.get("/connect/authorize", params=authorize_params(challenge))

    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    form = parse_form(page.text)
    assert form.action == "/connect/authorize"
    assert form.method == "post"
    assert form.fields["client_id"] == CLIENT_ID
    assert form.fields["state"] == "st-123"
    assert form.fields["login"] == DEMO_LOGIN
    assert [text for _, _, text in form.buttons] == ["Godkend", "Afvis"]
    assert "Sandbox ApS" in page.text
    assert "Firma ID 100001" in page.text
    assert "Nordlys Tømrer ApS" in page.text


async def test_full_flow_with_query_callback_gives_tokens_that_reach_the_api(
    client: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge)
    assert callback["state"] == "st-123"

    tokens = await exchange_code(client, callback["code"], verifier)

    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"]
    assert tokens.headers["cache-control"] == "no-store"
    organizations = await client.get("/v1/organizations", headers=bearer(body["access_token"]))
    assert organizations.status_code == 200
    assert organizations.json() == [
        {"id": 100001, "name": "Sandbox ApS", "isPro": True},
        {"id": 100002, "name": "Nordlys Tømrer ApS", "isPro": False},
    ]


async def test_form_post_mode_posts_code_and_state_to_the_redirect_uri(
    client: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce_pair()
    page = await client.get(
        "/connect/authorize", params=authorize_params(challenge, response_mode="form_post")
    )
    form = parse_form(page.text)
    answer = await client.post(form.action, data=form.submit("Godkend"))

    assert answer.status_code == 200
    assert "document.forms[0].submit()" in answer.text
    fields = callback_params(answer)
    assert fields["state"] == "st-123"
    assert (await exchange_code(client, fields["code"], verifier)).status_code == 200


async def test_declining_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    callback = await approve(client, challenge, button="Afvis")
    assert callback["error"] == "access_denied"
    assert callback["state"] == "st-123"
    assert "code" not in callback


async def test_the_chosen_login_decides_which_organizations_the_token_reaches(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.add_login("bogholder@firma.dk", name="Bogholder", organizations=[100002])
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge, login="bogholder@firma.dk")
    token = (await exchange_code(client, callback["code"], verifier)).json()["access_token"]

    listed = await client.get("/v1/organizations", headers=bearer(token))
    assert [o["id"] for o in listed.json()] == [100002]
    refused = await client.get("/v1/100001/accounts/entry", headers=bearer(token))
    assert refused.status_code == 403
    assert error_code(refused) == 41


async def test_pkce_mismatch_and_missing_verifier_are_invalid_grant(
    client: httpx.AsyncClient,
) -> None:
    _, challenge = pkce_pair()
    callback = await approve(client, challenge)
    wrong, _ = pkce_pair("another")
    mismatch = await exchange_code(client, callback["code"], wrong)
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "invalid_grant"
    assert "code_verifier" in mismatch.json()["error_description"]

    callback = await approve(client, challenge)
    missing = await client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert missing.json()["error"] == "invalid_grant"


async def test_plain_pkce_and_missing_challenge_are_refused_back_to_the_client(
    client: httpx.AsyncClient,
) -> None:
    params = authorize_params("x" * 43, code_challenge_method="plain")
    plain = await client.get("/connect/authorize", params=params)
    assert plain.status_code == 302
    assert callback_params(plain)["error"] == "invalid_request"

    params = authorize_params("x" * 43)
    del params["code_challenge"], params["code_challenge_method"]
    missing = await client.get("/connect/authorize", params=params)
    assert callback_params(missing)["error"] == "invalid_request"


async def test_bad_request_parameters(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    unknown_client = await client.get(
        "/connect/authorize", params=authorize_params(challenge, client_id="isv_nobody")
    )
    assert unknown_client.status_code == 400  # shown on the page, never redirected
    assert "invalid_client" in unknown_client.text

    no_redirect = authorize_params(challenge)
    del no_redirect["redirect_uri"]
    assert (await client.get("/connect/authorize", params=no_redirect)).status_code == 400

    token_type = await client.get(
        "/connect/authorize", params=authorize_params(challenge, response_type="token")
    )
    assert callback_params(token_type)["error"] == "unsupported_response_type"

    bad_scope = await client.get(
        "/connect/authorize", params=authorize_params(challenge, scope="openid dinero:all")
    )
    assert callback_params(bad_scope)["error"] == "invalid_scope"


async def test_registered_redirect_uris_are_enforced(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.add_client("isv_strict", "s3cret", redirect_uris=["https://strict.example/cb"])
    _, challenge = pkce_pair()
    page = await client.get(
        "/connect/authorize", params=authorize_params(challenge, client_id="isv_strict")
    )
    assert page.status_code == 400


async def test_a_code_is_single_use_and_reuse_revokes_its_tokens(
    client: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge)
    first = await exchange_code(client, callback["code"], verifier)
    access = first.json()["access_token"]
    assert (await client.get("/v1/organizations", headers=bearer(access))).status_code == 200

    again = await exchange_code(client, callback["code"], verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (await client.get("/v1/organizations", headers=bearer(access))).status_code == 401


async def test_code_expires_and_redirect_uri_must_match(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge)
    other = await exchange_code(
        client, callback["code"], verifier, redirect_uri="https://evil.example/cb"
    )
    assert other.json()["error"] == "invalid_grant"

    callback = await approve(client, challenge)
    clock.advance(61)
    expired = await exchange_code(client, callback["code"], verifier)
    assert expired.json()["error"] == "invalid_grant"
    assert "expired" in expired.json()["error_description"]


async def test_client_authentication(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge)
    wrong = await client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, "wrong"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"

    post_auth = await client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert post_auth.status_code == 200

    unsupported = await client.post(
        "/connect/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"


async def _tokens(client: httpx.AsyncClient) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge)
    response = await exchange_code(client, callback["code"], verifier)
    assert response.status_code == 200
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_rotating_refresh_tokens_are_one_time(client: httpx.AsyncClient) -> None:
    tokens = await _tokens(client)
    rotated = await refresh(client, tokens["refresh_token"])
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]

    reused = await refresh(client, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert (await refresh(client, new["refresh_token"])).status_code == 200


async def test_rotated_token_works_within_the_grace_period_only(
    client: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.configure(rotation_grace_seconds=10)
    tokens = await _tokens(client)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200

    clock.advance(9)
    within = await refresh(client, tokens["refresh_token"])  # a second worker racing
    assert within.status_code == 200

    clock.advance(2)
    after = await refresh(client, tokens["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


async def test_reuse_after_grace_can_revoke_the_whole_grant(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(revoke_grant_on_refresh_reuse=True)
    tokens = await _tokens(client)
    new = (await refresh(client, tokens["refresh_token"])).json()
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    assert (await refresh(client, new["refresh_token"])).status_code == 400


async def test_reusable_refresh_tokens_stay_the_same(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.configure(refresh_token_mode="reusable")
    tokens = await _tokens(client)
    first = await refresh(client, tokens["refresh_token"])
    second = await refresh(client, tokens["refresh_token"])
    assert first.status_code == second.status_code == 200
    assert first.json()["refresh_token"] == tokens["refresh_token"]
    assert first.json()["access_token"] != second.json()["access_token"]


async def test_no_refresh_token_without_offline_access(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge, scope="dineropublicapi:read dineropublicapi:write")
    body = (await exchange_code(client, callback["code"], verifier)).json()
    assert "refresh_token" not in body


async def test_expired_access_token_is_401(
    client: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.configure(access_token_lifetime_seconds=300)
    tokens = await _tokens(client)
    assert tokens["expires_in"] == 300
    ok = await client.get("/v1/organizations", headers=bearer(tokens["access_token"]))
    assert ok.status_code == 200

    clock.advance(300)
    expired = await client.get("/v1/organizations", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]

    missing = await client.get("/v1/organizations")
    assert missing.status_code == 401


async def test_revocation_ends_refresh_and_access_tokens(client: httpx.AsyncClient) -> None:
    tokens = await _tokens(client)
    revoked = await client.post(
        "/connect/revocation",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert revoked.status_code == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    gone = await client.get("/v1/organizations", headers=bearer(tokens["access_token"]))
    assert gone.status_code == 401


async def test_legacy_api_key_grant_reaches_only_the_keys_organization(
    client: httpx.AsyncClient,
) -> None:
    response = await api_key_grant(client, API_KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["expires_in"] == 3600
    token = body["access_token"]

    listed = await client.get("/v1/organizations", headers=bearer(token))
    assert [o["id"] for o in listed.json()] == [100001]
    assert (await client.get("/v1/100001/vatTypes", headers=bearer(token))).status_code == 200
    other = await client.get("/v1/100002/vatTypes", headers=bearer(token))
    assert other.status_code == 403
    assert error_code(other) == 41


async def test_legacy_grant_refuses_bad_keys_and_missing_basic_auth(
    client: httpx.AsyncClient,
) -> None:
    bad = await api_key_grant(client, "nope")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"
    no_basic = await client.post(
        "/dineroapi/oauth/token",
        data={
            "grant_type": "password",
            "username": API_KEY,
            "password": API_KEY,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert no_basic.status_code == 401


async def test_organization_without_pro_is_403_code_90_except_the_organization_lists(
    api: httpx.AsyncClient,
) -> None:
    refused = await api.get("/v1/100002/accounts/entry")
    assert refused.status_code == 403
    assert error_code(refused) == 90

    v1 = await api.get("/v1/organizations", params={"fields": "Id,Name,IsPro,IsPayingPro"})
    assert {
        "Id": 100002,
        "Name": "Nordlys Tømrer ApS",
        "IsPro": False,
        "IsPayingPro": False,
    } in v1.json()
    v11 = await api.get("/v1.1/organizations")
    plain = next(o for o in v11.json() if o["Id"] == 100002)
    assert plain["Subscription"]["HasPro"] is False
    pro = next(o for o in v11.json() if o["Id"] == 100001)
    assert pro["Subscription"]["HasPro"] is True


async def test_unknown_organization_is_403_code_41(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/999999/accounts/entry")
    assert response.status_code == 403
    assert error_code(response) == 41


async def test_read_only_token_cannot_write(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    token = sandbox.issue_token(scopes=["dineropublicapi:read"])
    read = await client.get("/v1/100001/vatTypes", headers=bearer(token))
    assert read.status_code == 200
    write = await client.post(
        "/v1.2/100001/ledgeritems", headers=bearer(token), json=[{"Lines": []}]
    )
    assert write.status_code == 403


async def test_openid_scope_adds_an_id_token(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    callback = await approve(client, challenge, scope="openid dineropublicapi:read", nonce="n-1")
    body = (await exchange_code(client, callback["code"], verifier)).json()
    assert body["id_token"].count(".") == 2


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", ""])
async def test_revocation_of_unknown_tokens_is_still_200(
    client: httpx.AsyncClient, hint: str
) -> None:
    response = await client.post(
        "/connect/revocation",
        data={"token": "nope", "token_type_hint": hint},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200
