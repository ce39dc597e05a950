//! The access rule: may this person use this app now? One SQL fragment,
//! embedded in every query that grants or honours something for a person,
//! so the rule is decided in the same statement (and snapshot) as the grant:
//!
//! | where | rule | and the grant's own tie to a sign-in |
//! | --- | --- | --- |
//! | authorize (`app_admitting`) | `may_use_app` | the browser's live session |
//! | code redemption (`redeem_code`) | `may_use_app` | `live_session` of the code's session |
//! | device approval (`answer_device`), redemption (`redeem_device_code`) | `may_use_app` | `live_session` of the approving session |
//! | refresh (`rotate_refresh_token`) | `may_use_app` | the family is unrevoked |
//! | userinfo, introspection | `may_use_app` | the token (and its family) unrevoked |
//! | forward auth (`forward_auth_check`, `redeem_proxy_code`, `user_may_use_app` at `sso`) | `may_use_app` | the cookie's (or code's) live session |
//!
//! Why a refresh token is tied to its session only through revocation: a
//! refresh token exists only for `offline_access`, which asks for access
//! while the person is away, so it outlives the browser session's expiry
//! (as Keycloak's offline sessions do). Ending the session on purpose
//! (sign-out, a password reset, disabling the user) revokes its families and
//! their access tokens in the same transaction (RFC 9700 §4.14.2 allows
//! revoking on logout or a password change). A code redemption pins its session row
//! so such an ending cannot slip between the check and the new tokens, and
//! an access token dies with its family even if it was written while the
//! family was being revoked.

/// True when user `user` (an SQL expression) is active and app `app` admits
/// them: the app has no group restriction, or the user is in one of its
/// groups. Both arguments are SQL expressions (columns or placeholders).
pub(super) fn may_use_app(app: &str, user: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM users au WHERE au.id = {user} AND au.disabled_at IS NULL) \
         AND (NOT EXISTS (SELECT 1 FROM app_groups ar WHERE ar.app_id = {app}) \
              OR EXISTS (SELECT 1 FROM app_groups ar JOIN group_members am ON am.group_id = ar.group_id \
                         WHERE ar.app_id = {app} AND am.user_id = {user})))"
    )
}

/// True when session `session` (the SHA-256 of its cookie) has not ended or
/// expired at `now`. Both arguments are SQL expressions.
pub(super) fn live_session(session: &str, now: &str) -> String {
    format!("EXISTS (SELECT 1 FROM sessions ls WHERE ls.id_hash = {session} AND ls.expires_at > {now})")
}
