//! One-time links from the console: inviting someone (a pending person
//! who chooses their password through the link) and a password-reset link
//! for a person. Each link is shown once, on the answer that made it (never
//! in a URL), and e-mailed too when the form asks and a mailer is
//! configured, as `latch user invite --send` does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::form::Form;
use super::{ConsoleAdmin, Frame, Section, Shell, Stop, found, refused, users};
use crate::admin::invites::{self, Invite, OneTimeLink, readable_time};
use crate::admin::{self, AdminError};
use crate::store::LinkPurpose;
use crate::web::AppState;

/// The invite form on the new-person page: empty, or as typed.
pub struct InviteForm {
    pub username: String,
    pub email: String,
    pub name: String,
    /// The link's validity as typed, such as `7d`.
    pub ttl: String,
    /// Every group, and whether it is ticked.
    pub groups: Vec<(String, bool)>,
    /// Whether a mailer is configured, so the form offers to e-mail the link.
    pub can_mail: bool,
    pub send: bool,
}

impl InviteForm {
    pub fn empty(state: &AppState, groups: Vec<String>) -> Self {
        Self {
            username: String::new(),
            email: String::new(),
            name: String::new(),
            ttl: invites::DEFAULT_INVITE_TTL.to_owned(),
            groups: groups.into_iter().map(|group| (group, false)).collect(),
            can_mail: state.config.mailer.is_some(),
            send: false,
        }
    }

    fn typed(state: &AppState, form: &Form, groups: Vec<String>) -> Self {
        let ticked = form.all("group");
        Self {
            username: form.text("username"),
            email: form.text("email"),
            name: form.text("name"),
            ttl: form.text("ttl"),
            groups: groups.into_iter().map(|group| (group.clone(), ticked.contains(&group))).collect(),
            can_mail: state.config.mailer.is_some(),
            send: form.checked("send"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/link_created.html")]
struct LinkPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    username: &'a str,
    purpose: &'static str,
    url: &'a str,
    expires: String,
    /// The address the link was e-mailed to.
    mailed_to: Option<String>,
}

/// `POST /admin/users/new`: invites someone; shows their link once.
pub async fn invite(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let username = form.text("username");
    let command = Invite {
        username: username.clone(),
        email: form.text("email"),
        name: form.optional("name"),
        groups: form.all("group"),
        ttl: form.optional("ttl"),
    };
    match invites::invite(&state.store, &admin.actor, &state.public_url, command).await {
        Ok(link) => link_page(&state, &admin, &form, &username, LinkPurpose::Invite, &link).await,
        Err(error) => {
            let (status, message) = refused(error)?;
            let groups = found(admin::list_groups(&state.store).await)?.into_iter().map(|group| group.name).collect();
            let typed = InviteForm::typed(&state, &form, groups);
            users::new_page(&state, &admin, status, Some(message), typed).await
        }
    }
}

/// `POST /admin/users/<username>/reset-link`: a link with which they
/// choose a new password, shown once.
pub async fn reset_link(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let link = found(invites::reset_link(&state.store, &admin.actor, &state.public_url, &username, None).await)?;
    link_page(&state, &admin, &form, &username, LinkPurpose::Reset, &link).await
}

/// The page that shows `link` once, after e-mailing it when the form's
/// `send` box was ticked. A failed mail is shown there, with the link to
/// pass on by hand: the link exists already.
async fn link_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    form: &Form,
    username: &str,
    purpose: LinkPurpose,
    link: &OneTimeLink,
) -> Result<Response, Stop> {
    let mut frame = admin.frame(Section::Users);
    let mut mailed_to = None;
    if let (Some(mailer), true) = (&state.config.mailer, form.checked("send")) {
        match invites::mail_link(&state.store, mailer, username, purpose, link).await {
            Ok(address) => mailed_to = Some(address),
            Err(error) => frame.error = Some(mail_failure(error)),
        }
    }
    let page = LinkPage {
        shell: admin.shell(),
        frame,
        username,
        purpose: if purpose == LinkPurpose::Invite { "invitation" } else { "password-reset" },
        url: &link.url,
        expires: readable_time(link.expires_at),
        mailed_to,
    };
    Ok(admin.show(StatusCode::OK, &page))
}

fn mail_failure(error: AdminError) -> String {
    tracing::warn!(%error, "mailing a one-time link from the console failed");
    format!("The link could not be e-mailed ({error}); pass it on yourself.")
}
