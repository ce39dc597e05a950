//! The token endpoint's grants, one file each. A grant's file holds its
//! rules and decides what to issue; `token` authenticates the client before
//! and signs what was decided after. Adding a grant takes its `GrantType`
//! variant, its file, and its arm below.

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;

use super::Provider;
use super::error::ProtocolResult;
use super::params::Params;
use super::token::Issued;
use super::values::GrantType;
use crate::clock::UnixTime;
use crate::store::App;

impl Provider {
    pub(super) async fn grant(
        &self,
        grant_type: GrantType,
        app: &App,
        params: &Params,
        now: UnixTime,
    ) -> ProtocolResult<Issued> {
        match grant_type {
            GrantType::AuthorizationCode => self.authorization_code(app, params, now).await,
            GrantType::RefreshToken => self.refresh_token(app, params, now).await,
            GrantType::ClientCredentials => self.client_credentials(app, params, now).await,
            GrantType::DeviceCode => self.device_code(app, params, now).await,
        }
    }
}
