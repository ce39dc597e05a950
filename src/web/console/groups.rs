//! Groups: list them with their members, create one, and on a group's
//! page add and remove members.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::form::Form;
use super::{ConsoleAdmin, DoneQuery, Frame, Section, Shell, Stop, done, found, missing, path_part, refused, stop};
use crate::admin::{self, ADMINISTRATORS, Membership};
use crate::store::GroupSummary;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "console/groups.html")]
struct ListPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    groups: &'a [GroupSummary],
    /// The new-group form's value, as typed.
    name: &'a str,
}

pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    let groups = found(admin::list_groups(&state.store).await)?;
    let mut frame = admin.frame(Section::Groups);
    frame.notice = query.done.as_deref().and_then(notice);
    Ok(admin.show(StatusCode::OK, &ListPage { shell: admin.shell(), frame, groups: &groups, name: "" }))
}

/// `POST /admin/groups`: creates a group.
pub async fn create(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let name = form.text("name");
    match admin::add_group(&state.store, &admin.actor, &name).await {
        Ok(()) => Ok(done(&format!("/admin/groups/{}", path_part(&name)), "created")),
        Err(error) => {
            let (status, message) = refused(error)?;
            let groups = found(admin::list_groups(&state.store).await)?;
            let mut frame = admin.frame(Section::Groups);
            frame.error = Some(message);
            Ok(admin.show(status, &ListPage { shell: admin.shell(), frame, groups: &groups, name: &name }))
        }
    }
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    group: &'a GroupSummary,
    /// The add-member form's value, as typed.
    username: &'a str,
}

pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(name): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    group_page(&state, &admin, &name, StatusCode::OK, query.done.as_deref().and_then(notice), None, "").await
}

async fn group_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    name: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    username: &str,
) -> Result<Response, Stop> {
    let groups = found(admin::list_groups(&state.store).await)?;
    let Some(group) = groups.iter().find(|group| group.name == name) else {
        return Err(missing("group", name));
    };
    let mut frame = admin.frame(Section::Groups);
    frame.notice = notice;
    frame.error = error;
    Ok(admin.show(status, &GroupPage { shell: admin.shell(), frame, group, username }))
}

/// `POST /admin/groups/<name>/<action>`: `add-member` or `remove-member`.
pub async fn act(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    if action == "add-member" && name == ADMINISTRATORS {
        admin.require_fresh(&state, &format!("/admin/groups/{}", path_part(&name)))?;
    }
    let membership = Membership { group: name.clone(), username: form.text("username") };
    let outcome = match action.as_str() {
        "add-member" => admin::add_member(&state.store, &admin.actor, &membership).await.map(|()| "added"),
        "remove-member" => admin::remove_member(&state.store, &admin.actor, &membership).await.map(|()| "removed"),
        _ => return Err(stop(StatusCode::NOT_FOUND, "Not found", "No such action.")),
    };
    match outcome {
        Ok(what) => Ok(done(&format!("/admin/groups/{}", path_part(&name)), what)),
        Err(error) => {
            let (status, message) = refused(error)?;
            let typed = if action == "add-member" { membership.username.as_str() } else { "" };
            group_page(&state, &admin, &name, status, None, Some(message), typed).await
        }
    }
}

fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "Group created.",
        "added" => "Member added.",
        "removed" => "Member removed: what the group gave them ended at once.",
        _ => return None,
    })
}
