//! Optional e-mail: invites, password-reset links and "Forgot password?"
//! sent over SMTP (`smtp_url`). The one outbound mail client, as
//! `logout_delivery` is the one outbound HTTP client.
//!
//! `smtp_url` forms (lettre's): `smtp://host:25` (no TLS: a relay on the
//! same host or network), `smtp://user:pass@host:587?tls=required`
//! (STARTTLS, refused if the server does not offer it),
//! `smtps://user:pass@host:465` (TLS from the first byte). TLS is rustls
//! with the aws-lc-rs provider, checking the server against the system's
//! CA certificates.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `smtp_url` or `smtp_from` cannot be used; the text says why.
    #[error("{0}")]
    Settings(String),
    /// The recipient's stored address is not one a mail can go to.
    #[error("cannot send to {address:?}: {reason}")]
    Recipient { address: String, reason: String },
    /// The SMTP server could not be reached or refused the mail.
    #[error("sending mail failed: {0}")]
    Send(String),
}

/// Sends mail through one SMTP server, from one address. Cloning is cheap.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    /// Without the transport, whose URL may carry a password.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `smtp_url` (see the module's forms) sending as `from`
    /// (`Latch <latch@example.com>` or a bare address). Connects only when
    /// sending. Errors: `Settings`.
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|error| MailError::Settings(format!("smtp_url is not usable: {error}")))?
            .build();
        let from = from.parse().map_err(|error| MailError::Settings(format!("smtp_from {from:?}: {error}")))?;
        Ok(Self { transport, from })
    }

    /// Sends a plain-text mail to `to` (`name <address>`). Errors:
    /// `Recipient`, `Send`.
    pub async fn send(&self, to_name: &str, to_address: &str, mail: &Mail) -> Result<(), MailError> {
        let recipient = |reason: String| MailError::Recipient { address: to_address.to_owned(), reason };
        let address =
            to_address.parse().map_err(|error: lettre::address::AddressError| recipient(error.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(to_name.to_owned()), address))
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|error| recipient(error.to_string()))?;
        self.transport.send(message).await.map_err(|error| MailError::Send(error.to_string()))?;
        Ok(())
    }
}

/// A mail's subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// The mail carrying an invite link to `name`.
pub fn invite_mail(name: &str, url: &str, expires: &str) -> Mail {
    Mail {
        subject: "Your account is ready".into(),
        body: format!(
            "Hello {name},\n\nan account was made for you. Open this link to choose your password:\n\n{url}\n\n\
             The link works once, until {expires}.\n"
        ),
    }
}

/// The mail carrying a password-reset link to `name`.
pub fn reset_mail(name: &str, url: &str, expires: &str) -> Mail {
    Mail {
        subject: "Choose a new password".into(),
        body: format!(
            "Hello {name},\n\nopen this link to choose a new password:\n\n{url}\n\nThe link works once, until \
             {expires}. Your other sessions end when you use it. If you did not ask for this, ignore this mail: \
             your password stays as it is.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_when_the_mailer_is_made() {
        assert!(Mailer::new("smtp://127.0.0.1:2525", "Latch <latch@example.com>").is_ok());
        assert!(Mailer::new("smtps://mail.example.com", "latch@example.com").is_ok());
        assert!(matches!(Mailer::new("http://mail.example.com", "latch@example.com"), Err(MailError::Settings(_))));
        assert!(matches!(Mailer::new("smtp://127.0.0.1", "not an address"), Err(MailError::Settings(_))));
    }

    #[test]
    fn mails_carry_the_link_and_when_it_ends() {
        let mail = reset_mail("Ada", "https://sso.example.com/reset/t", "2026-12-02 06:00 UTC");
        assert!(mail.body.contains("\n\nhttps://sso.example.com/reset/t\n\n"), "{}", mail.body);
        assert!(mail.body.contains("until 2026-12-02 06:00 UTC"));
        assert!(invite_mail("Bob", "https://x/invite/t", "then").body.contains("https://x/invite/t"));
    }
}
