//! The per-session authorization token cache (§9.2.1.1, §9.3.2.4): aliases the peer registers,
//! bounded by the MAX_AUTH_TOKEN_CACHE_SIZE this endpoint advertised.

use super::ids::Violation;
use moqlink_model::params::Token;
use moqlink_model::{Blob, SessionErrorCode};
use std::collections::HashMap;

/// A token as the application sees it, aliases resolved. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthToken {
    /// The token type (0 = out of band).
    pub token_type: u64,
    /// The token value.
    pub value: Blob,
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthToken {{ token_type: {}, value: <{} bytes redacted> }}",
            self.token_type,
            self.value.len()
        )
    }
}

/// The outcome of resolving a message's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    /// The tokens to authorize with.
    Tokens(Vec<AuthToken>),
    /// Reject the message (an alias that is not registered): the reason.
    Reject(String),
}

/// Registered aliases and their size accounting.
#[derive(Debug, Default)]
pub struct TokenCache {
    limit: u64,
    used: u64,
    aliases: HashMap<u64, AuthToken>,
}

impl TokenCache {
    /// A cache holding at most `limit` bytes (16 + value length per token).
    pub fn new(limit: u64) -> Self {
        TokenCache {
            limit,
            used: 0,
            aliases: HashMap::new(),
        }
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Applies the tokens of one request: REGISTER / DELETE change the cache, USE_ALIAS and
    /// USE_VALUE name tokens. A duplicate alias or an overflow closes the session
    /// (DUPLICATE_AUTH_TOKEN_ALIAS, AUTH_TOKEN_CACHE_OVERFLOW); an unknown alias rejects the
    /// message.
    pub fn apply<'a>(
        &mut self,
        tokens: impl IntoIterator<Item = &'a Token>,
    ) -> Result<TokenOutcome, Violation> {
        let mut out = Vec::new();
        let mut reject = None;
        for t in tokens {
            match t {
                Token::Register {
                    alias,
                    token_type,
                    token_value,
                } => {
                    if self.aliases.contains_key(alias) {
                        return Err(Violation::new(
                            SessionErrorCode::DuplicateAuthTokenAlias,
                            format!("token alias {alias} is already registered"),
                        ));
                    }
                    let size = t.cache_size();
                    if self.used + size > self.limit {
                        return Err(Violation::new(
                            SessionErrorCode::AuthTokenCacheOverflow,
                            format!(
                                "registering alias {alias} needs {size} bytes; {} of {} used",
                                self.used, self.limit
                            ),
                        ));
                    }
                    let token = AuthToken {
                        token_type: *token_type,
                        value: token_value.clone(),
                    };
                    self.used += size;
                    self.aliases.insert(*alias, token.clone());
                    out.push(token);
                }
                Token::Delete { alias } => match self.aliases.remove(alias) {
                    Some(old) => self.used -= 16 + old.value.len() as u64,
                    None => reject = Some(format!("token alias {alias} is not registered")),
                },
                Token::UseAlias { alias } => match self.aliases.get(alias) {
                    Some(t) => out.push(t.clone()),
                    None => reject = Some(format!("token alias {alias} is not registered")),
                },
                Token::UseValue {
                    token_type,
                    token_value,
                } => out.push(AuthToken {
                    token_type: *token_type,
                    value: token_value.clone(),
                }),
            }
        }
        Ok(match reject {
            Some(r) => TokenOutcome::Reject(r),
            None => TokenOutcome::Tokens(out),
        })
    }

    /// Applies CLIENT_SETUP's tokens: a registration that does not fit is used as a value
    /// instead of closing the session (§9.3.2.5).
    pub fn apply_setup<'a>(
        &mut self,
        tokens: impl IntoIterator<Item = &'a Token>,
    ) -> Vec<AuthToken> {
        let mut out = Vec::new();
        for t in tokens {
            match t {
                Token::Register {
                    alias,
                    token_type,
                    token_value,
                } => {
                    let token = AuthToken {
                        token_type: *token_type,
                        value: token_value.clone(),
                    };
                    let size = t.cache_size();
                    if !self.aliases.contains_key(alias) && self.used + size <= self.limit {
                        self.used += size;
                        self.aliases.insert(*alias, token.clone());
                    }
                    out.push(token);
                }
                Token::UseValue {
                    token_type,
                    token_value,
                } => out.push(AuthToken {
                    token_type: *token_type,
                    value: token_value.clone(),
                }),
                Token::UseAlias { .. } | Token::Delete { .. } => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(alias: u64, value: &str) -> Token {
        Token::Register {
            alias,
            token_type: 0,
            token_value: Blob::from(value),
        }
    }

    #[test]
    fn register_use_delete_within_the_limit() {
        // Limit 40: one token of 16 + 4 bytes fits, a second of 16 + 5 does not.
        let mut c = TokenCache::new(40);
        assert_eq!(
            c.apply([&reg(1, "abcd")]).unwrap(),
            TokenOutcome::Tokens(vec![AuthToken {
                token_type: 0,
                value: Blob::from("abcd")
            }])
        );
        assert_eq!(c.used(), 20);
        let used = c.apply([&Token::UseAlias { alias: 1 }]).unwrap();
        assert!(matches!(used, TokenOutcome::Tokens(t) if t[0].value == Blob::from("abcd")));
        let e = c.apply([&reg(2, "abcde")]).unwrap_err();
        assert_eq!(e.code, SessionErrorCode::AuthTokenCacheOverflow);
        let e = c.apply([&reg(1, "x")]).unwrap_err();
        assert_eq!(e.code, SessionErrorCode::DuplicateAuthTokenAlias);
        c.apply([&Token::Delete { alias: 1 }]).unwrap();
        assert_eq!(c.used(), 0);
        assert!(matches!(
            c.apply([&Token::UseAlias { alias: 1 }]).unwrap(),
            TokenOutcome::Reject(_)
        ));
        assert!(matches!(
            c.apply([&Token::Delete { alias: 9 }]).unwrap(),
            TokenOutcome::Reject(_)
        ));
    }

    #[test]
    fn setup_registrations_that_overflow_become_values() {
        let mut c = TokenCache::new(0);
        let t = c.apply_setup([&reg(1, "tok")]);
        assert_eq!(t.len(), 1);
        assert!(matches!(
            c.apply([&Token::UseAlias { alias: 1 }]).unwrap(),
            TokenOutcome::Reject(_)
        ));
    }
}
