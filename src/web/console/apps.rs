//! Apps: list them, register one (OpenID Connect or forward auth), and on
//! an app's page see what to paste into its configuration (the lines of
//! `latch app show`), change its settings, rotate its secret or remove it.
//! A client secret is shown once, on the answer that made it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::form::Form;
use super::{ConsoleAdmin, DoneQuery, Frame, Section, Shell, Stop, done, found, missing, path_part, refused, stop};
use crate::admin::{
    self, Actor, AddApp, AddProxyApp, AdminError, AppCredentials, AppDetails, AppOptionChanges, UpdateApp,
};
use crate::crypto::keys::SigningAlg;
use crate::store::{AppSummary, ConsentMode};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "console/apps.html")]
struct ListPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    apps: &'a [AppSummary],
}

pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    let apps = found(admin::list_apps(&state.store).await)?;
    let mut frame = admin.frame(Section::Apps);
    frame.notice = query.done.as_deref().and_then(notice);
    Ok(admin.show(StatusCode::OK, &ListPage { shell: admin.shell(), frame, apps: &apps }))
}

/// An app form's values: as stored, or as typed.
pub struct AppValues {
    /// `oidc` or `proxy`.
    pub kind: String,
    pub slug: String,
    pub name: String,
    pub redirect_uris: String,
    pub public: bool,
    /// Every group, and whether it is ticked.
    pub groups: Vec<(String, bool)>,
    pub code_ttl: String,
    pub access_token_ttl: String,
    pub refresh_token_ttl: String,
    pub consent: String,
    pub signing_alg: String,
    pub client_credentials: bool,
    pub device_code: bool,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    /// What the account portal's launcher opens; empty: no link.
    pub launch_url: String,
    pub external_url: String,
    pub cookie_domain: String,
    /// `""` (the deployment decides), `true` or `false`.
    pub require_mfa: String,
}

impl AppValues {
    fn typed(form: &Form, all_groups: Vec<String>) -> Self {
        let ticked = form.all("group");
        Self {
            kind: form.text("kind"),
            slug: form.text("slug"),
            name: form.text("name"),
            redirect_uris: form.text("redirect_uris"),
            public: form.checked("public"),
            groups: all_groups.into_iter().map(|group| (group.clone(), ticked.contains(&group))).collect(),
            code_ttl: form.text("code_ttl"),
            access_token_ttl: form.text("access_token_ttl"),
            refresh_token_ttl: form.text("refresh_token_ttl"),
            consent: form.text("consent"),
            signing_alg: form.text("signing_alg"),
            client_credentials: form.checked("client_credentials"),
            device_code: form.checked("device_code"),
            post_logout_redirect_uris: form.text("post_logout_redirect_uris"),
            backchannel_logout_uri: form.text("backchannel_logout_uri"),
            launch_url: form.text("launch_url"),
            external_url: form.text("external_url"),
            cookie_domain: form.text("cookie_domain"),
            require_mfa: form.text("require_mfa"),
        }
    }

    fn empty(all_groups: Vec<String>) -> Self {
        Self::typed(&Form::parse(b"kind=oidc&consent=implicit&signing_alg=RS256"), all_groups)
    }

    fn stored(app: &AppSummary, all_groups: Vec<String>) -> Self {
        let ttl = |seconds: Option<i64>| seconds.map(|seconds| format!("{seconds}s")).unwrap_or_default();
        let options = &app.options;
        Self {
            kind: if app.external_url.is_some() { "proxy" } else { "oidc" }.into(),
            slug: app.slug.clone(),
            name: app.name.clone(),
            redirect_uris: app.redirect_uris.join("\n"),
            public: app.public,
            groups: all_groups.into_iter().map(|group| (group.clone(), app.groups.contains(&group))).collect(),
            code_ttl: ttl(options.code_ttl),
            access_token_ttl: ttl(options.access_token_ttl),
            refresh_token_ttl: ttl(options.refresh_token_ttl),
            consent: options.consent.as_str().into(),
            signing_alg: options.signing_alg.as_str().into(),
            client_credentials: options.client_credentials,
            device_code: options.device_code,
            post_logout_redirect_uris: options.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: options.backchannel_logout_uri.clone().unwrap_or_default(),
            launch_url: options.launch_url.clone().unwrap_or_default(),
            external_url: app.external_url.clone().unwrap_or_default(),
            cookie_domain: String::new(),
            require_mfa: options.require_mfa.map(|required| required.to_string()).unwrap_or_default(),
        }
    }

    pub fn consents(&self) -> Vec<(&'static str, bool)> {
        ConsentMode::NAMES.iter().map(|name| (*name, *name == self.consent)).collect()
    }

    /// The second-factor choices: (value, words, chosen).
    pub fn mfa_choices(&self) -> Vec<(&'static str, &'static str, bool)> {
        [("", "as the deployment decides (require_mfa)"), ("true", "required"), ("false", "not required")]
            .into_iter()
            .map(|(value, words)| (value, words, value == self.require_mfa))
            .collect()
    }

    pub fn algs(&self) -> Vec<(&'static str, bool)> {
        SigningAlg::NAMES.iter().map(|name| (*name, *name == self.signing_alg)).collect()
    }
}

async fn group_names(state: &AppState) -> Result<Vec<String>, Stop> {
    Ok(found(admin::list_groups(&state.store).await)?.into_iter().map(|group| group.name).collect())
}

#[derive(Template)]
#[template(path = "console/app_new.html")]
struct NewPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    values: AppValues,
}

pub async fn new(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, Stop> {
    let values = AppValues::empty(group_names(&state).await?);
    Ok(admin.show(StatusCode::OK, &NewPage { shell: admin.shell(), frame: admin.frame(Section::Apps), values }))
}

/// The settings of an app form as the admin layer takes them. `update`:
/// an empty back-channel URI removes it (on creation it is just absent).
fn option_changes(form: &Form, update: bool) -> Result<AppOptionChanges, AdminError> {
    let consent = form.optional("consent").map(|raw| raw.parse::<ConsentMode>()).transpose();
    let signing_alg = form.optional("signing_alg").map(|raw| raw.parse::<SigningAlg>()).transpose();
    Ok(AppOptionChanges {
        code_ttl: form.optional("code_ttl"),
        access_token_ttl: form.optional("access_token_ttl"),
        refresh_token_ttl: form.optional("refresh_token_ttl"),
        consent: consent.map_err(|error| AdminError::invalid("consent", error.to_string()))?,
        signing_alg: signing_alg.map_err(|error| AdminError::invalid("signing_alg", error.to_string()))?,
        client_credentials: Some(form.checked("client_credentials")),
        post_logout_redirect_uris: Some(form.lines("post_logout_redirect_uris")),
        refresh_token_reuse_grace: None,
        backchannel_logout_uri: if update {
            Some(form.text("backchannel_logout_uri"))
        } else {
            form.optional("backchannel_logout_uri")
        },
        device_code: Some(form.checked("device_code")),
        device_code_ttl: None,
        // The console keeps no WebFinger switch: it leaves the mark where
        // `latch app update --webfinger` put it.
        webfinger: None,
        launch_url: if update { Some(form.text("launch_url")) } else { form.optional("launch_url") },
        require_mfa: Some(require_mfa(form)?),
    })
}

/// The second-factor choice of an app form: empty for the deployment's
/// `require_mfa`, else `true` or `false`.
fn require_mfa(form: &Form) -> Result<Option<bool>, AdminError> {
    match form.get("require_mfa").unwrap_or_default() {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        other => {
            Err(AdminError::invalid("require_mfa", format!("require_mfa must be empty, true or false, not {other:?}")))
        }
    }
}

#[derive(Template)]
#[template(path = "console/app_created.html")]
struct CreatedPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    slug: &'a str,
    heading: &'a str,
    /// `None` for a proxy app, which has no secret.
    credentials: Option<&'a AppCredentials>,
    snippet: String,
}

/// `POST /admin/apps`: registers an app and answers with its settings and,
/// for a confidential client, its secret, shown this once.
pub async fn create(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let slug = form.text("slug");
    let created = register(&state, &admin.actor, &form).await;
    match created {
        Ok((credentials, details)) => {
            let snippet = snippet(&details)?;
            let page = CreatedPage {
                shell: admin.shell(),
                frame: admin.frame(Section::Apps),
                slug: &slug,
                heading: "was registered",
                credentials: credentials.as_ref(),
                snippet,
            };
            Ok(admin.show(StatusCode::OK, &page))
        }
        Err(error) => {
            let (status, message) = refused(error)?;
            let mut frame = admin.frame(Section::Apps);
            frame.error = Some(message);
            let values = AppValues::typed(&form, group_names(&state).await?);
            Ok(admin.show(status, &NewPage { shell: admin.shell(), frame, values }))
        }
    }
}

/// Registers the app the form describes; its credentials (for an OpenID
/// Connect app) and settings.
async fn register(
    state: &AppState,
    actor: &Actor,
    form: &Form,
) -> Result<(Option<AppCredentials>, AppDetails), AdminError> {
    let (store, config) = (&state.store, &state.config);
    let (slug, name, groups) = (form.text("slug"), form.text("name"), form.all("group"));
    if form.get("kind") == Some("proxy") {
        let command = AddProxyApp {
            slug,
            name,
            groups,
            external_url: form.text("external_url"),
            cookie_domain: form.optional("cookie_domain"),
            require_mfa: require_mfa(form)?,
            client_id: None,
        };
        let settings = admin::add_proxy_app(store, config, actor, command).await?;
        return Ok((None, AppDetails::Proxy(Box::new(settings))));
    }
    let options = option_changes(form, false)?;
    let redirect_uris = form.lines("redirect_uris");
    let public = form.checked("public");
    let command = AddApp {
        slug: slug.clone(),
        name,
        redirect_uris,
        public,
        groups,
        options,
        client_id: None,
        client_secret: None,
    };
    let credentials = admin::add_app(store, config, actor, command).await?;
    Ok((Some(credentials), admin::show_app(store, config, &slug).await?))
}

/// The lines `latch app show` prints, as one text.
fn snippet(details: &AppDetails) -> Result<String, Stop> {
    admin::app_snippet(details).map(|lines| lines.join("\n")).map_err(|error| {
        tracing::error!(%error, "cannot encode an app's settings");
        stop(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again.")
    })
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    app: &'a AppSummary,
    snippet: String,
    values: AppValues,
}

pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(slug): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    app_page(&state, &admin, &slug, StatusCode::OK, query.done.as_deref().and_then(notice), None, None).await
}

async fn app_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    slug: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    typed: Option<&Form>,
) -> Result<Response, Stop> {
    let details = found(admin::show_app(&state.store, &state.config, slug).await)?;
    let apps = found(admin::list_apps(&state.store).await)?;
    // Removed between the two reads: as if it had never been there.
    let Some(app) = apps.iter().find(|app| app.slug == slug) else {
        return Err(missing("app", slug));
    };
    let groups = group_names(state).await?;
    let values = match typed {
        Some(form) => AppValues {
            kind: if app.external_url.is_some() { "proxy" } else { "oidc" }.into(),
            slug: app.slug.clone(),
            name: app.name.clone(),
            public: app.public,
            ..AppValues::typed(form, groups)
        },
        None => AppValues::stored(app, groups),
    };
    let mut frame = admin.frame(Section::Apps);
    frame.notice = notice;
    frame.error = error;
    let page = AppPage { shell: admin.shell(), frame, app, snippet: snippet(&details)?, values };
    Ok(admin.show(status, &page))
}

/// `POST /admin/apps/<slug>`: changes an app's settings (of a proxy app,
/// its groups and second factor: the rest of its form is absent).
pub async fn update(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let redirect_uris = form.lines("redirect_uris");
    let outcome = match option_changes(&form, true) {
        Ok(options) => {
            let command = UpdateApp {
                slug: slug.clone(),
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                groups: Some(form.all("group")),
                options,
                name: form.optional("name"),
            };
            admin::update_app(&state.store, &admin.actor, command).await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => Ok(done(&format!("/admin/apps/{}", path_part(&slug)), "updated")),
        Err(error) => {
            let (status, message) = refused(error)?;
            app_page(&state, &admin, &slug, status, None, Some(message), Some(&form)).await
        }
    }
}

/// `POST /admin/apps/<slug>/rotate-secret`: a new client secret, shown on
/// this answer only; the old one stops working at once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    admin.require_fresh(&state, &format!("/admin/apps/{}", path_part(&slug)))?;
    match admin::rotate_secret(&state.store, &state.config, &admin.actor, &slug).await {
        Ok(credentials) => {
            let details = found(admin::show_app(&state.store, &state.config, &slug).await)?;
            let page = CreatedPage {
                shell: admin.shell(),
                frame: admin.frame(Section::Apps),
                slug: &slug,
                heading: "has a new client secret",
                credentials: Some(&credentials),
                snippet: snippet(&details)?,
            };
            Ok(admin.show(StatusCode::OK, &page))
        }
        Err(error) => {
            let (status, message) = refused(error)?;
            app_page(&state, &admin, &slug, status, None, Some(message), None).await
        }
    }
}

/// `POST /admin/apps/<slug>/remove`, with the `confirm` box ticked.
pub async fn remove(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    let outcome = if form.checked("confirm") {
        admin::remove_app(&state.store, &admin.actor, &slug).await
    } else {
        Err(AdminError::invalid("confirm", "Tick the box to confirm that the app is to be removed."))
    };
    match outcome {
        Ok(()) => Ok(done("/admin/apps", "removed")),
        Err(error) => {
            let (status, message) = refused(error)?;
            app_page(&state, &admin, &slug, status, None, Some(message), None).await
        }
    }
}

fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "updated" => "Settings saved.",
        "removed" => "App removed: its tokens and sessions no longer work.",
        _ => return None,
    })
}
