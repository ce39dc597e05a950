//! The embedded preset files, by name (the file's stem): one line per app,
//! so adding an app is adding its file and its line here.

/// `(name, TOML text)`, sorted by name.
pub(super) const FILES: &[(&str, &str)] = &[
    ("argo-cd", include_str!("../../presets/argo-cd.toml")),
    ("audiobookshelf", include_str!("../../presets/audiobookshelf.toml")),
    ("forgejo", include_str!("../../presets/forgejo.toml")),
    ("gitea", include_str!("../../presets/gitea.toml")),
    ("grafana", include_str!("../../presets/grafana.toml")),
    ("home-assistant", include_str!("../../presets/home-assistant.toml")),
    ("immich", include_str!("../../presets/immich.toml")),
    ("jellyfin", include_str!("../../presets/jellyfin.toml")),
    ("jupyterhub", include_str!("../../presets/jupyterhub.toml")),
    ("karakeep", include_str!("../../presets/karakeep.toml")),
    ("kavita", include_str!("../../presets/kavita.toml")),
    ("minio", include_str!("../../presets/minio.toml")),
    ("mod-auth-openidc", include_str!("../../presets/mod-auth-openidc.toml")),
    ("nextcloud", include_str!("../../presets/nextcloud.toml")),
    ("oauth2-proxy", include_str!("../../presets/oauth2-proxy.toml")),
    ("open-webui", include_str!("../../presets/open-webui.toml")),
    ("outline", include_str!("../../presets/outline.toml")),
    ("paperless-ngx", include_str!("../../presets/paperless-ngx.toml")),
    ("portainer", include_str!("../../presets/portainer.toml")),
    ("prometheus", include_str!("../../presets/prometheus.toml")),
    ("proxmox", include_str!("../../presets/proxmox.toml")),
    ("uptime-kuma", include_str!("../../presets/uptime-kuma.toml")),
    ("vaultwarden", include_str!("../../presets/vaultwarden.toml")),
];
