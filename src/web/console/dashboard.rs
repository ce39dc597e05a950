//! `/admin`: the dashboard. Sign-ins and failures per day for 30 days, the
//! sign-ins per app, and who is signed in now, drawn as SVG on the server.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::chart::{BarLineChart, BarLineSpec, BarList, Series, bar_line_chart, bar_list};
use super::dates::short_date;
use super::{ConsoleAdmin, Frame, Section, Shell, Stop, found};
use crate::admin::{self, DASHBOARD_DAYS, Dashboard, DayStats};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    days: &'a [DayRow],
    per_day: BarLineChart,
    per_app: Option<BarList>,
    apps: &'a [(String, i64)],
    active_sessions: i64,
    signed_in_people: i64,
    sign_ins: i64,
    failures: i64,
}

/// A day as the table under the chart lists it.
struct DayRow {
    date: String,
    sign_ins: i64,
    failures: i64,
}

pub async fn page(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, Stop> {
    let dashboard = found(admin::dashboard(&state.store, state.clock.now()).await)?;
    let sign_ins = dashboard.days.iter().map(|day| day.sign_ins).sum();
    let failures = dashboard.days.iter().map(|day| day.failures).sum();
    let days: Vec<DayRow> = dashboard
        .days
        .iter()
        .map(|day| DayRow { date: short_date(day.start), sign_ins: day.sign_ins, failures: day.failures })
        .collect();
    let page = DashboardPage {
        shell: admin.shell(),
        frame: admin.frame(Section::Dashboard),
        per_day: per_day_chart(&dashboard.days, sign_ins, failures),
        per_app: per_app_chart(&dashboard),
        days: &days,
        apps: &dashboard.apps,
        active_sessions: dashboard.active_sessions,
        signed_in_people: dashboard.signed_in_people,
        sign_ins,
        failures,
    };
    Ok(admin.show(StatusCode::OK, &page))
}

fn per_day_chart(days: &[DayStats], sign_ins: i64, failures: i64) -> BarLineChart {
    let busiest = days.iter().max_by_key(|day| (day.sign_ins, day.start));
    let busiest = match busiest {
        Some(day) if day.sign_ins > 0 => {
            format!(" The busiest day was {} with {}.", short_date(day.start), day.sign_ins)
        }
        _ => String::new(),
    };
    bar_line_chart(BarLineSpec {
        id: "per-day",
        title: format!("Sign-ins and failures per day, last {DASHBOARD_DAYS} days"),
        description: format!(
            "Bars: sign-ins per day; line: failed sign-ins per day. {sign_ins} sign-ins and {failures} failures \
             in all.{busiest}"
        ),
        labels: days.iter().map(|day| short_date(day.start)).collect(),
        label_every: 7,
        bars: Series { name: "sign-ins".into(), values: days.iter().map(|day| day.sign_ins).collect() },
        line: Some(Series { name: "failures".into(), values: days.iter().map(|day| day.failures).collect() }),
    })
}

/// The ten apps with most sign-ins; `None` when no app had any.
fn per_app_chart(dashboard: &Dashboard) -> Option<BarList> {
    let top: Vec<(String, i64)> = dashboard.apps.iter().take(10).cloned().collect();
    let first = top.first()?;
    let description = format!(
        "Sign-ins to each app over the last {DASHBOARD_DAYS} days, most first; {} has most, {}.",
        first.0, first.1
    );
    Some(bar_list("per-app", format!("Sign-ins per app, last {DASHBOARD_DAYS} days"), description, &top))
}
