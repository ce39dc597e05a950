//! People: search and page through them, create one, and on a person's
//! page change their profile, password, status and groups, lift a sign-in
//! lock, or sign them out everywhere.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::dates::date_time;
use super::form::Form;
use super::invites::InviteForm;
use super::{ConsoleAdmin, DoneQuery, Frame, Section, Shell, Stop, done, found, path_part, refused, stop};
use crate::admin::{self, ADMINISTRATORS, AddUser, AdminError, Membership, SetPassword, UpdateUser};
use crate::store::UserSummary;
use crate::web::AppState;

const PER_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: i64,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct ListPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    search: &'a str,
    users: &'a [UserSummary],
    total: i64,
    /// 1-based, for people.
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<ListQuery>,
) -> Result<Response, Stop> {
    let page = query.page.max(0);
    let found_page = found(admin::find_users(&state.store, &query.q, page, PER_PAGE).await)?;
    let pages = ((found_page.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |page: i64| format!("/admin/users?q={}&page={page}", path_part(&query.q));
    let mut frame = admin.frame(Section::Users);
    frame.notice = query.done.as_deref().and_then(notice);
    let view = ListPage {
        shell: admin.shell(),
        frame,
        search: &query.q,
        users: &found_page.users,
        total: found_page.total,
        page: page + 1,
        pages,
        previous: (page > 0).then(|| link(page - 1)),
        next: (page + 1 < pages).then(|| link(page + 1)),
    };
    Ok(admin.show(StatusCode::OK, &view))
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    username: &'a str,
    email: &'a str,
    name: &'a str,
    /// Every group, and whether it is ticked.
    groups: Vec<(String, bool)>,
    invite: InviteForm,
}

pub async fn new(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, Stop> {
    let groups = group_names(&state).await?;
    new_page(&state, &admin, StatusCode::OK, None, InviteForm::empty(&state, groups)).await
}

/// The new-person page with an empty add form and `invite` (empty, or as
/// typed when refused for `error`).
pub(super) async fn new_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    status: StatusCode,
    error: Option<String>,
    invite: InviteForm,
) -> Result<Response, Stop> {
    let groups = group_names(state).await?.into_iter().map(|group| (group, false)).collect();
    let mut frame = admin.frame(Section::Users);
    frame.error = error;
    let page = NewPage { shell: admin.shell(), frame, username: "", email: "", name: "", groups, invite };
    Ok(admin.show(status, &page))
}

async fn group_names(state: &AppState) -> Result<Vec<String>, Stop> {
    Ok(found(admin::list_groups(&state.store).await)?.into_iter().map(|group| group.name).collect())
}

#[derive(Template)]
#[template(path = "console/user_created.html")]
struct CreatedPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    username: &'a str,
    password: &'a str,
}

/// `POST /admin/users`: creates a person. With a password typed, back to
/// their page; without, the generated one is shown on this answer, once.
pub async fn create(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let command = AddUser {
        username: form.text("username"),
        email: form.text("email"),
        name: form.optional("name"),
        groups: form.all("group"),
        password: form.get("password").filter(|password| !password.is_empty()).map(str::to_owned),
    };
    match admin::add_user(&state.store, &admin.actor, command).await {
        Ok(added) => match added.generated_password {
            Some(password) => {
                let username = form.text("username");
                let page = CreatedPage {
                    shell: admin.shell(),
                    frame: admin.frame(Section::Users),
                    username: &username,
                    password: &password,
                };
                Ok(admin.show(StatusCode::OK, &page))
            }
            None => Ok(done(&format!("/admin/users/{}", path_part(&form.text("username"))), "created")),
        },
        Err(error) => {
            let (status, message) = refused(error)?;
            let ticked = form.all("group");
            let names = group_names(&state).await?;
            let invite = InviteForm::empty(&state, names.clone());
            let groups = names
                .into_iter()
                .map(|group| {
                    let on = ticked.contains(&group);
                    (group, on)
                })
                .collect();
            let mut frame = admin.frame(Section::Users);
            frame.error = Some(message);
            let (username, email, name) = (form.text("username"), form.text("email"), form.text("name"));
            let page = NewPage {
                shell: admin.shell(),
                frame,
                username: &username,
                email: &email,
                name: &name,
                groups,
                invite,
            };
            Ok(admin.show(status, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    user: &'a UserSummary,
    /// The profile form's values: the stored ones, or what was typed.
    email: &'a str,
    name: &'a str,
    /// Groups the person is not in, to add them to.
    other_groups: Vec<String>,
    factors: Vec<FactorRow>,
    /// Whether a mailer is configured, so a reset link can be e-mailed.
    can_mail: bool,
}

/// A second factor as the person's page lists it (never its secret).
struct FactorRow {
    kind: String,
    name: String,
    created: String,
    last_used: String,
}

pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(username): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    let notice = query.done.as_deref().and_then(notice);
    user_page(&state, &admin, &username, StatusCode::OK, notice, None, None).await
}

/// A person's page, with the outcome of a change or the reason it was
/// refused, and (after a refused profile change) the values typed.
async fn user_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    username: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    typed: Option<(String, String)>,
) -> Result<Response, Stop> {
    let user = found(admin::show_user(&state.store, username).await)?;
    let other_groups = found(admin::list_groups(&state.store).await)?
        .into_iter()
        .map(|group| group.name)
        .filter(|group| !user.groups.contains(group))
        .collect();
    let factors = found(admin::list_factors(&state.store, username).await)?
        .into_iter()
        .map(|factor| FactorRow {
            kind: factor.kind.to_string(),
            name: factor.name,
            created: date_time(factor.created),
            last_used: factor.last_used.map(date_time).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let (email, name) = typed.unwrap_or_else(|| (user.email.clone(), user.name.clone()));
    let mut frame = admin.frame(Section::Users);
    frame.notice = notice;
    frame.error = error;
    let can_mail = state.config.mailer.is_some();
    let page = UserPage {
        shell: admin.shell(),
        frame,
        user: &user,
        email: &email,
        name: &name,
        other_groups,
        factors,
        can_mail,
    };
    Ok(admin.show(status, &page))
}

/// `POST /admin/users/<username>/<action>`: one change to a person.
pub async fn act(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((username, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let granting_admin = action == "add-group" && form.text("group") == ADMINISTRATORS;
    if granting_admin || action == "reset-factors" {
        admin.require_fresh(&state, &format!("/admin/users/{}", path_part(&username)))?;
    }
    let (store, actor) = (&state.store, &admin.actor);
    let membership = || Membership { group: form.text("group"), username: username.clone() };
    let outcome: Result<&'static str, AdminError> = match action.as_str() {
        "edit" => {
            let command = UpdateUser {
                username: username.clone(),
                email: Some(form.text("email")),
                name: Some(form.text("name")),
            };
            admin::update_user(store, actor, command).await.map(|()| "updated")
        }
        "password" => {
            let command = SetPassword {
                username: username.clone(),
                password: form.get("password").unwrap_or_default().to_owned(),
                end_sessions: !form.checked("keep_sessions"),
            };
            admin::set_password(store, actor, command).await.map(|_| "password")
        }
        "disable" => admin::disable_user(store, actor, &username).await.map(|()| "disabled"),
        "enable" => admin::enable_user(store, actor, &username).await.map(|()| "enabled"),
        "unlock" => admin::unlock_user(store, actor, &username).await.map(|_| "unlocked"),
        "end-sessions" => admin::end_sessions(store, actor, &username).await.map(|_| "signed-out"),
        "reset-factors" => admin::reset_factors(store, actor, &username).await.map(|_| "factors-reset"),
        "add-group" => admin::add_member(store, actor, &membership()).await.map(|()| "group-added"),
        "remove-group" => admin::remove_member(store, actor, &membership()).await.map(|()| "group-removed"),
        _ => return Err(stop(StatusCode::NOT_FOUND, "Not found", "No such action.")),
    };
    match outcome {
        Ok(what) => Ok(done(&format!("/admin/users/{}", path_part(&username)), what)),
        Err(error) => {
            let (status, message) = refused(error)?;
            let typed = (action == "edit").then(|| (form.text("email"), form.text("name")));
            user_page(&state, &admin, &username, status, None, Some(message), typed).await
        }
    }
}

/// The notice for a `done` key; anything else shows none.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "Person created.",
        "updated" => "Profile saved.",
        "password" => "Password changed.",
        "disabled" => "Disabled: their sessions ended and their tokens stopped working.",
        "enabled" => "Enabled: they can sign in again.",
        "unlocked" => "Sign-in lock lifted.",
        "signed-out" => "Signed out everywhere: their sessions ended and their tokens were revoked.",
        "group-added" => "Added to the group.",
        "factors-reset" => "Second factors removed: they sign in with their password alone until they enrol new ones.",
        "group-removed" => "Removed from the group.",
        _ => return None,
    })
}
