"""Open WebUI's sign-in through an OpenID Connect provider, without the
rest of Open WebUI: authlib's Starlette OAuth client registered and used as
Open WebUI registers and uses it (backend/open_webui/config.py and
utils/oauth.py there), configured only from the environment variables that
Latch's open-webui preset prints.

- /oauth/oidc/login sends the browser to the provider;
- /oauth/oidc/callback redeems the code, takes the person from the ID
  token's claims (userinfo only when the email claim is missing), refuses a
  new person unless ENABLE_OAUTH_SIGNUP is true, and answers with who
  signed in, as JSON.

Usage: python app.py <host> <port>.
"""

import os
import sys

import uvicorn
from authlib.integrations.starlette_client import OAuth
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

env = os.environ


def register(oauth):
    client_kwargs = {"scope": env.get("OAUTH_SCOPES", "openid email profile")}
    if env.get("OAUTH_CODE_CHALLENGE_METHOD"):
        client_kwargs["code_challenge_method"] = env["OAUTH_CODE_CHALLENGE_METHOD"]
    oauth.register(
        name="oidc",
        client_id=env["OAUTH_CLIENT_ID"],
        client_secret=env["OAUTH_CLIENT_SECRET"],
        server_metadata_url=env["OPENID_PROVIDER_URL"],
        client_kwargs=client_kwargs,
        redirect_uri=env.get("OPENID_REDIRECT_URI"),
    )


oauth = OAuth()
register(oauth)
# This app keeps no users: everyone who signs in is new.
known_users = set()


async def login(request):
    client = oauth.create_client("oidc")
    redirect_uri = env.get("OPENID_REDIRECT_URI") or str(request.url_for("callback"))
    return await client.authorize_redirect(request, redirect_uri)


async def callback(request):
    client = oauth.create_client("oidc")
    token = await client.authorize_access_token(request)
    email_claim = env.get("OAUTH_EMAIL_CLAIM", "email")
    user = token.get("userinfo")
    source = "id_token"
    if not user or email_claim not in user:
        user = await client.userinfo(token=token)
        source = "userinfo"
    if not user or not user.get("sub") or not user.get(email_claim):
        return PlainTextResponse("no email", status_code=400)
    email = user[email_claim].lower()
    if email not in known_users and env.get("ENABLE_OAUTH_SIGNUP", "false").lower() != "true":
        return PlainTextResponse("sign-up is disabled", status_code=403)
    known_users.add(email)
    username = user.get(env.get("OAUTH_USERNAME_CLAIM", "name"))
    return JSONResponse({"email": email, "username": username, "claims_from": source})


async def root(request):
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", root),
        Route("/oauth/oidc/login", login),
        Route("/oauth/oidc/callback", callback, name="callback"),
    ],
    middleware=[Middleware(SessionMiddleware, secret_key=env.get("WEBUI_SECRET_KEY", "change-me"))],
)

if __name__ == "__main__":
    host, port = sys.argv[1:3]
    uvicorn.run(app, host=host, port=int(port), log_level="info")
