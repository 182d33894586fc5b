//! Console themes: semantic roles mapped to styles, loaded from themes/*.toml.
//! (Placeholder: the full loader with inheritance and file:line errors replaces this.)

use ratatui::style::{Color, Modifier, Style};

/// Every semantic key a theme can set. Views ask for a role, never for a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    // ui
    Base,
    Muted,
    Title,
    Border,
    BorderFocused,
    Header,
    Selected,
    Marked,
    Hint,
    HintKey,
    Breadcrumb,
    Input,
    Gauge,
    GaugeHigh,
    Changed,
    // alerts
    AlertInfo,
    AlertOk,
    AlertWarn,
    AlertError,
    // operation states
    OpPendingApproval,
    OpQueued,
    OpRunning,
    OpRetryWait,
    OpVerifying,
    OpBlocked,
    OpSucceeded,
    OpFailed,
    OpCancelled,
    // access states (the access matrix)
    AccessInSync,
    AccessMissing,
    AccessExcess,
    AccessQueued,
    AccessRunning,
    AccessFailed,
    AccessAwaitingApproval,
    AccessBlocked,
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
}

impl Theme {
    /// The monochrome theme: modifiers only, no colour.
    pub fn none() -> Theme {
        Theme {
            name: "none".into(),
        }
    }

    pub fn style(&self, role: Role) -> Style {
        let s = Style::default();
        if self.name == "none" {
            return match role {
                Role::Selected => s.add_modifier(Modifier::REVERSED),
                Role::Title | Role::Header => s.add_modifier(Modifier::BOLD),
                _ => s,
            };
        }
        match role {
            Role::AlertError | Role::OpFailed | Role::AccessFailed => s.fg(Color::Red),
            Role::Selected => s.add_modifier(Modifier::REVERSED),
            _ => s,
        }
    }
}
