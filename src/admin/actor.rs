//! Who makes a change: every admin operation takes an `Actor`, and its audit
//! event names it.

/// The person behind an admin operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin command, run by this operating-system account (the one
    /// behind `sudo` when there is one).
    Cli { os_user: String },
    /// A member of `latch-admins` in the admin console: their user id (which
    /// outlives a rename) and username (what people read).
    WebAdmin { user_id: String, username: String },
    /// A signed-in person changing their own account (`/account/security`).
    Owner { user_id: String, username: String },
}

impl Actor {
    /// How the audit trail names the actor: `cli:<os user>` or
    /// `web:<username>`.
    pub fn recorded(&self) -> String {
        match self {
            Self::Cli { os_user } => format!("cli:{os_user}"),
            Self::WebAdmin { username, .. } => format!("web:{username}"),
            Self::Owner { username, .. } => format!("self:{username}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_tells_a_command_from_the_console() {
        assert_eq!(Actor::Cli { os_user: "root".into() }.recorded(), "cli:root");
        let admin = Actor::WebAdmin { user_id: "0b7e".into(), username: "ada".into() };
        assert_eq!(admin.recorded(), "web:ada");
        let owner = Actor::Owner { user_id: "0b7e".into(), username: "ada".into() };
        assert_eq!(owner.recorded(), "self:ada");
    }
}
