//! The audit trail: newest first, filtered by person, app, kind and days,
//! a page at a time, and the same selection as JSON lines to download.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::dates::{date_time, parse_date};
use super::{ConsoleAdmin, Frame, Section, Shell, Stop, found, refused, stop};
use crate::admin::{self, AdminError, EventQuery};
use crate::store::{AuditEvent, DAY};
use crate::web::AppState;

const PER_PAGE: i64 = 100;
/// The most events one export holds (about 16 MB, built in memory): more
/// than a month of a busy homelab; narrow the days for more.
const EXPORT_LIMIT: i64 = 100_000;

/// The filter, as the form sends it: each field may be empty.
#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    user: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    kind: String,
    /// First day, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    from: String,
    /// Last day, included.
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: i64,
}

impl Filter {
    /// The admin layer's query for this filter; `Invalid` for a date that
    /// is not one.
    fn query(&self, limit: i64, offset: i64) -> Result<EventQuery, AdminError> {
        let day = |field: &'static str, text: &str| -> Result<Option<i64>, AdminError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            parse_date(text).map(Some).ok_or_else(|| {
                AdminError::invalid(field, format!("{field:?} must be a date such as 2026-12-01, not {text:?}"))
            })
        };
        let some = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        Ok(EventQuery {
            user: some(&self.user),
            app: some(&self.app),
            kind: some(&self.kind),
            from: day("from", &self.from)?,
            // The last day is included: up to the next midnight.
            until: day("to", &self.to)?.map(|midnight| midnight + DAY),
            offset,
            ..EventQuery::newest(limit)
        })
    }

    /// This filter's query string with `page` (for links).
    fn link(&self, path: &str, page: Option<i64>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in
            [("user", &self.user), ("app", &self.app), ("kind", &self.kind), ("from", &self.from), ("to", &self.to)]
        {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(page) = page {
            query.append_pair("page", &page.to_string());
        }
        format!("{path}?{}", query.finish())
    }
}

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    filter: &'a Filter,
    /// Each app's slug, and whether it is the one filtered on.
    apps: Vec<(String, bool)>,
    events: Vec<EventRow>,
    page: i64,
    previous: Option<String>,
    next: Option<String>,
    export: String,
}

struct EventRow {
    at: String,
    kind: String,
    user: String,
    app: String,
    by: String,
    ip: String,
    detail: String,
}

impl From<AuditEvent> for EventRow {
    fn from(event: AuditEvent) -> Self {
        // What came from a visitor (a username typed, a user agent) is
        // shown with control characters escaped; the template escapes HTML.
        let show =
            |value: Option<String>| value.map(|text| crate::text::printable(&text).into_owned()).unwrap_or_default();
        Self {
            at: date_time(event.at),
            kind: show(Some(event.kind)),
            user: show(event.username),
            app: show(event.app),
            by: show(event.actor),
            ip: show(event.ip),
            detail: show(event.detail),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(filter): Query<Filter>,
) -> Result<Response, Stop> {
    let page = filter.page.max(0);
    let apps = found(admin::list_apps(&state.store).await)?
        .into_iter()
        .map(|app| {
            let on = app.slug == filter.app.trim();
            (app.slug, on)
        })
        .collect();
    // One more than a page: whether there is a next page.
    let listed = match filter.query(PER_PAGE + 1, page * PER_PAGE) {
        Ok(query) => admin::list_events(&state.store, query).await,
        Err(error) => Err(error),
    };
    let mut frame = admin.frame(Section::Events);
    let (status, mut events) = match listed {
        Ok(events) => (StatusCode::OK, events),
        Err(error) => {
            let (status, message) = refused(error)?;
            frame.error = Some(message);
            (status, Vec::new())
        }
    };
    let more = events.len() as i64 > PER_PAGE;
    events.truncate(PER_PAGE as usize);
    let view = EventsPage {
        shell: admin.shell(),
        frame,
        filter: &filter,
        apps,
        events: events.into_iter().map(EventRow::from).collect(),
        page: page + 1,
        previous: (page > 0).then(|| filter.link("/admin/events", Some(page - 1))),
        next: more.then(|| filter.link("/admin/events", Some(page + 1))),
        export: filter.link("/admin/events.jsonl", None),
    };
    Ok(admin.show(status, &view))
}

/// `GET /admin/events.jsonl`: every event the filter selects (up to
/// `EXPORT_LIMIT`), newest first, one JSON object a line, as a download.
pub async fn export(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
    Query(filter): Query<Filter>,
) -> Result<Response, Stop> {
    let listed = match filter.query(EXPORT_LIMIT, 0) {
        Ok(query) => admin::list_events(&state.store, query).await,
        Err(error) => Err(error),
    };
    let events = match listed {
        Ok(events) => events,
        Err(error) => {
            let (status, message) = refused(error)?;
            return Err(stop(status, "Cannot export these events", &message));
        }
    };
    let mut body = String::with_capacity(events.len() * 160);
    for event in &events {
        match serde_json::to_string(event) {
            Ok(line) => {
                body.push_str(&line);
                body.push('\n');
            }
            Err(error) => {
                tracing::error!(%error, "cannot encode an audit event");
                return Err(stop(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again."));
            }
        }
    }
    let headers = [
        (CONTENT_TYPE, "application/jsonl; charset=utf-8"),
        (CONTENT_DISPOSITION, "attachment; filename=\"latch-events.jsonl\""),
    ];
    Ok((headers, body).into_response())
}
