// NextAuth v4's own API handler (what a Next.js app serves under
// /api/auth/[...nextauth]) hosted by a plain Node.js HTTP server instead of
// Next.js, with the "custom" OAuth provider set up as Karakeep sets it up
// (apps/web/server/auth.ts in its NextAuth releases), configured only from
// the environment variables that Latch's karakeep preset prints.
//
// Usage: node server.js <host> <port>. Besides /api/auth/*, GET / answers
// 200 so a test can tell the server is up.
"use strict";

const http = require("node:http");
const NextAuth = require("next-auth/next").default;

const env = process.env;
const [host, port] = process.argv.slice(2);

const authOptions = {
  secret: env.NEXTAUTH_SECRET,
  session: { strategy: "jwt" },
  providers: [
    {
      id: "custom",
      name: env.OAUTH_PROVIDER_NAME,
      type: "oauth",
      wellKnown: env.OAUTH_WELLKNOWN_URL,
      authorization: { params: { scope: env.OAUTH_SCOPE } },
      clientId: env.OAUTH_CLIENT_ID,
      clientSecret: env.OAUTH_CLIENT_SECRET,
      client: env.OAUTH_ID_TOKEN_SIGNED_RESPONSE_ALG
        ? { id_token_signed_response_alg: env.OAUTH_ID_TOKEN_SIGNED_RESPONSE_ALG }
        : {},
      allowDangerousEmailAccountLinking: env.OAUTH_ALLOW_DANGEROUS_EMAIL_ACCOUNT_LINKING === "true",
      // As Karakeep: the profile comes from the ID token, with PKCE and state.
      idToken: true,
      checks: ["pkce", "state"],
      profile(profile) {
        return { id: profile.sub, name: profile.name || profile.email, email: profile.email };
      },
    },
  ],
  callbacks: {
    // Karakeep refuses a profile without an address, and refuses people it
    // does not know when sign-ups are disabled; this host keeps no users,
    // so everyone signing in is new.
    async signIn({ profile }) {
      if (!profile || !profile.email) {
        return false;
      }
      return env.DISABLE_SIGNUPS !== "true";
    },
  },
};

const handler = NextAuth(authOptions);

function readBody(request) {
  return new Promise((resolve, reject) => {
    let data = "";
    request.on("data", (chunk) => (data += chunk));
    request.on("end", () => resolve(data));
    request.on("error", reject);
  });
}

function parseCookies(header) {
  const cookies = {};
  for (const part of (header || "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0) {
      cookies[part.slice(0, at).trim()] = decodeURIComponent(part.slice(at + 1).trim());
    }
  }
  return cookies;
}

const server = http.createServer(async (request, response) => {
  try {
    const url = new URL(request.url, `http://${request.headers.host}`);
    if (!url.pathname.startsWith("/api/auth/")) {
      response.writeHead(url.pathname === "/" ? 200 : 404).end();
      return;
    }
    const body = request.method === "POST" ? Object.fromEntries(new URLSearchParams(await readBody(request))) : {};
    // The shape of a Next.js API route's request and response.
    const req = Object.assign(request, {
      query: { ...Object.fromEntries(url.searchParams), nextauth: url.pathname.split("/").slice(3) },
      cookies: parseCookies(request.headers.cookie),
      body,
    });
    const res = Object.assign(response, {
      status(code) {
        response.statusCode = code;
        return res;
      },
      send(content) {
        response.end(typeof content === "string" ? content : JSON.stringify(content));
      },
      json(content) {
        response.setHeader("Content-Type", "application/json");
        response.end(JSON.stringify(content));
      },
    });
    await handler(req, res);
  } catch (error) {
    console.error(error);
    response.writeHead(500).end(String(error));
  }
});

server.listen(Number(port), host, () => console.log(`listening on ${host}:${port}`));
