//! The Asterisk handler's sans-IO core: [`MediaCommand`]s become plans of ARI calls
//! ([`AriCall`]), ARI events become normalised [`MediaEvent`]s. It owns the leg→bridge map
//! (Asterisk bridges are objects; the controller only knows legs), the playbacks and recordings
//! in flight, and the contact each leg carries.
//!
//! The protocol facts it encodes (fixtures README):
//! - `StasisEnd` is the last event that can be counted on (`ChannelDestroyed` after it is
//!   unreliable with `subscribeAll=false`): a leg ends there, unless Switchboard sent it to the
//!   dialplan with `continue`.
//! - `ChannelHangupRequest` with `soft: true` carries a flag bitmask, not Q.850; a remote hangup
//!   has no cause at all. Only `ChannelDestroyed.cause` and non-soft requests are Q.850.
//! - An originate into the app gets `StasisStart` only once answered; unanswered, only
//!   `ChannelDestroyed` (cause 19) arrives.
//! - With `subscribeAll=true` bridge recording events come twice; unpausing and media lists
//!   repeat `PlaybackStarted`: each is reported once.
//! - A caller hanging up first leaves its bridge behind, holding the other leg.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use crate::media::{
    CONTACT_VARIABLE, ConferenceAction, HangupCause, LegDirection, LegId, LegSnapshot,
    MediaCommand, MediaEvent, OriginateRequest, OriginateTarget, PlaySource, RecordFormat,
    RecordTarget,
};
use crate::model::ContactId;

use super::cause::{cause_from_code, code_from_cause};
use super::client::{OriginateParams, RecordParams};
use super::event::{AriEvent, EventKind};
use super::model::{Bridge, Channel, ChannelState};

/// Bridges Switchboard creates for two legs are named `sb-br-<first leg>`.
pub const BRIDGE_PREFIX: &str = "sb-br-";
/// Conference rooms are bridges named `sb-conf-<room>`.
pub const CONFERENCE_PREFIX: &str = "sb-conf-";
/// The first application argument of every leg Switchboard originates.
pub const APP_ARG: &str = "switchboard";

/// One ARI call of a plan (data; the handler's IO side performs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AriCall {
    /// `POST /channels/{id}`.
    Originate(OriginateParams),
    /// `POST /channels/{id}/answer`.
    Answer {
        /// Channel.
        channel: String,
    },
    /// `DELETE /channels/{id}?reason_code=`.
    Hangup {
        /// Channel.
        channel: String,
        /// Q.850 code.
        reason_code: Option<i64>,
    },
    /// `POST /channels/{id}/moh`.
    StartMoh {
        /// Channel.
        channel: String,
        /// Class.
        class: Option<String>,
    },
    /// `DELETE /channels/{id}/moh`.
    StopMoh {
        /// Channel.
        channel: String,
    },
    /// `POST /channels/{id}/play/{playbackId}`.
    Play {
        /// Channel.
        channel: String,
        /// Playback id.
        playback: String,
        /// Media URI.
        media: String,
    },
    /// `DELETE /playbacks/{id}` (404 means it already finished: fine).
    StopPlayback {
        /// Playback id.
        playback: String,
    },
    /// `POST /channels/{id}/record`.
    RecordChannel {
        /// Channel.
        channel: String,
        /// Parameters.
        params: RecordParams,
    },
    /// `POST /bridges/{id}/record`.
    RecordBridge {
        /// Bridge.
        bridge: String,
        /// Parameters.
        params: RecordParams,
    },
    /// `POST /recordings/live/{name}/stop`.
    StopRecording {
        /// Recording name.
        name: String,
    },
    /// `POST /bridges?type=mixing&bridgeId=` (409 means it exists: fine).
    CreateBridge {
        /// Bridge id.
        bridge: String,
        /// Its name.
        name: String,
    },
    /// `POST /bridges/{id}/addChannel`.
    AddChannels {
        /// Bridge.
        bridge: String,
        /// Channels.
        channels: Vec<String>,
    },
    /// `POST /bridges/{id}/removeChannel`.
    RemoveChannels {
        /// Bridge.
        bridge: String,
        /// Channels.
        channels: Vec<String>,
    },
    /// `DELETE /bridges/{id}` (404 means it is gone: fine).
    DestroyBridge {
        /// Bridge.
        bridge: String,
    },
    /// `POST /channels/{id}/continue`.
    Continue {
        /// Channel.
        channel: String,
        /// Context.
        context: String,
        /// Extension.
        extension: String,
    },
    /// `POST /channels/{id}/dtmf`.
    SendDtmf {
        /// Channel.
        channel: String,
        /// Digits.
        digits: String,
    },
    /// `POST /channels/{id}/variable`.
    SetVariable {
        /// Channel.
        channel: String,
        /// Variable name.
        name: String,
        /// Value.
        value: String,
    },
    /// `POST /channels/{id}/mute?direction=in`.
    Mute {
        /// Channel.
        channel: String,
    },
    /// `DELETE /channels/{id}/mute?direction=in`.
    Unmute {
        /// Channel.
        channel: String,
    },
    /// `GET /bridges/{id}` (a conference's members).
    ListBridge {
        /// Bridge.
        bridge: String,
    },
}

/// Why a command cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The leg is not known to this handler.
    #[error("no leg {0}")]
    NoSuchLeg(String),
    /// The command needs a bridge and the leg is in none.
    #[error("leg {0} is not in a bridge")]
    NotBridged(String),
    /// The command's input is not valid.
    #[error("{0}")]
    Invalid(String),
}

/// What a plan amounts to once its calls succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanKind {
    /// Nothing further.
    Plain,
    /// An originate of this leg.
    Originate(LegId),
    /// A conference listing: read members from the `ListBridge` reply.
    ListConference(String),
}

/// A command turned into ARI calls, performed in order; the first failure ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The calls.
    pub calls: Vec<AriCall>,
    /// What it amounts to.
    pub kind: PlanKind,
}

#[derive(Debug, Clone)]
struct Leg {
    contact: Option<ContactId>,
    direction: LegDirection,
    announced: bool,
    answered: bool,
    bridge: Option<String>,
    /// The bridge the controller was last told the leg is in (Bridged, ConferenceJoined). A
    /// command's success moves `bridge` at once, but only the switch's event tells the
    /// controller; if the socket drops before that event, resync tells it instead.
    told_bridge: Option<String>,
    continuing: bool,
    hangup_cause: Option<HangupCause>,
    caller: Option<String>,
    destination: Option<String>,
}

impl Leg {
    fn new(direction: LegDirection, contact: Option<ContactId>) -> Self {
        Leg {
            contact,
            direction,
            announced: false,
            answered: false,
            bridge: None,
            told_bridge: None,
            continuing: false,
            hangup_cause: None,
            caller: None,
            destination: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Recording {
    leg: LegId,
    path: String,
    started: bool,
}

/// The adapter's view of the switch: legs, bridges, playbacks, recordings.
#[derive(Debug, Clone)]
pub struct AdapterState {
    app: String,
    legs: HashMap<LegId, Leg>,
    bridges: HashMap<String, Vec<String>>,
    playbacks: HashMap<String, (LegId, bool)>,
    recordings: HashMap<String, Recording>,
    ended: HashSet<LegId>,
}

/// A contact id from a channel variable's text (decimal, as Switchboard writes it).
pub fn parse_contact(text: &str) -> Option<ContactId> {
    let t = text.trim();
    let t = t.strip_prefix("contact#").unwrap_or(t);
    t.parse().ok().map(ContactId)
}

/// A contact id as written into [`CONTACT_VARIABLE`].
pub fn contact_text(contact: ContactId) -> String {
    contact.0.to_string()
}

/// The ARI endpoint for an originate target.
pub fn endpoint_of(target: &OriginateTarget) -> String {
    match target {
        OriginateTarget::SipUser { user, domain: None } => format!("PJSIP/{user}"),
        OriginateTarget::SipUser {
            user,
            domain: Some(domain),
        } => format!("PJSIP/{user}@{domain}"),
        OriginateTarget::Gateway { gateway, number } => format!("PJSIP/{number}@{gateway}"),
        OriginateTarget::Local { extension, context } => format!("Local/{extension}@{context}"),
        OriginateTarget::Raw(dial) => dial.clone(),
    }
}

/// The ARI media URI for a play source (`sound:`, `tone:`; a URI with a scheme passes through).
pub fn media_uri(source: &PlaySource) -> Option<String> {
    match source {
        PlaySource::File(f) if f.contains(':') => Some(f.clone()),
        PlaySource::File(f) => Some(format!("sound:{f}")),
        PlaySource::Tone(t) if t.starts_with("tone:") => Some(t.clone()),
        PlaySource::Tone(t) => Some(format!("tone:{t}")),
        PlaySource::Music(_) => None,
    }
}

fn leg_of_target(target_uri: &str) -> Option<&str> {
    target_uri.strip_prefix("channel:")
}

impl AdapterState {
    /// An empty state for the Stasis application `app`.
    pub fn new(app: &str) -> Self {
        AdapterState {
            app: app.to_owned(),
            legs: HashMap::new(),
            bridges: HashMap::new(),
            playbacks: HashMap::new(),
            recordings: HashMap::new(),
            ended: HashSet::new(),
        }
    }

    /// Legs known now.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// Whether a leg is known.
    pub fn knows(&self, leg: &LegId) -> bool {
        self.legs.contains_key(leg)
    }

    /// The bridge a leg is in.
    pub fn bridge_of(&self, leg: &LegId) -> Option<&str> {
        self.legs.get(leg)?.bridge.as_deref()
    }

    /// The contact a leg carries.
    pub fn contact_of(&self, leg: &LegId) -> Option<ContactId> {
        self.legs.get(leg)?.contact
    }

    fn need(&self, leg: &LegId) -> Result<&Leg, PlanError> {
        self.legs
            .get(leg)
            .ok_or_else(|| PlanError::NoSuchLeg(leg.to_string()))
    }

    /// Turns a command into ARI calls. An originate registers its leg at once (so that events
    /// arriving before the HTTP reply are matched by the id Switchboard chose).
    pub fn plan(&mut self, command: &MediaCommand) -> Result<Plan, PlanError> {
        let plain = |calls| {
            Ok(Plan {
                calls,
                kind: PlanKind::Plain,
            })
        };
        match command {
            MediaCommand::Originate(request) => self.plan_originate(request),
            MediaCommand::Answer { leg } => {
                self.need(leg)?;
                plain(vec![AriCall::Answer {
                    channel: leg.to_string(),
                }])
            }
            MediaCommand::Hangup { leg, cause } => {
                self.need(leg)?;
                if let Some(l) = self.legs.get_mut(leg) {
                    l.hangup_cause.get_or_insert_with(|| cause.clone());
                }
                plain(vec![AriCall::Hangup {
                    channel: leg.to_string(),
                    reason_code: code_from_cause(cause),
                }])
            }
            MediaCommand::Park { leg, music } => {
                let l = self.need(leg)?;
                let mut calls = Vec::new();
                if let Some(bridge) = &l.bridge {
                    calls.push(AriCall::RemoveChannels {
                        bridge: bridge.clone(),
                        channels: vec![leg.to_string()],
                    });
                }
                if let Some(class) = music {
                    calls.push(AriCall::StartMoh {
                        channel: leg.to_string(),
                        class: Some(class.clone()),
                    });
                }
                plain(calls)
            }
            MediaCommand::Play {
                leg,
                source,
                playback,
            } => {
                self.need(leg)?;
                match media_uri(source) {
                    Some(media) => {
                        self.playbacks
                            .insert(playback.clone(), (leg.clone(), false));
                        plain(vec![AriCall::Play {
                            channel: leg.to_string(),
                            playback: playback.clone(),
                            media,
                        }])
                    }
                    None => {
                        let PlaySource::Music(class) = source else {
                            return Err(PlanError::Invalid("no media".into()));
                        };
                        plain(vec![AriCall::StartMoh {
                            channel: leg.to_string(),
                            class: Some(class.clone()),
                        }])
                    }
                }
            }
            MediaCommand::StopPlayback { leg, playback } => {
                self.need(leg)?;
                if !self.playbacks.contains_key(playback) {
                    // Music on hold "playbacks" have no ARI playback object.
                    return plain(vec![AriCall::StopMoh {
                        channel: leg.to_string(),
                    }]);
                }
                plain(vec![AriCall::StopPlayback {
                    playback: playback.clone(),
                }])
            }
            MediaCommand::StartRecording {
                target,
                path,
                format,
            } => {
                let format = match format {
                    RecordFormat::Wav => "wav",
                    RecordFormat::Mp3 => "mp3",
                };
                let params = RecordParams::new(path, format);
                let (leg, call) = match target {
                    RecordTarget::Leg(leg) => {
                        self.need(leg)?;
                        (
                            leg.clone(),
                            AriCall::RecordChannel {
                                channel: leg.to_string(),
                                params,
                            },
                        )
                    }
                    RecordTarget::Bridge { leg } => {
                        let bridge = self
                            .need(leg)?
                            .bridge
                            .clone()
                            .ok_or_else(|| PlanError::NotBridged(leg.to_string()))?;
                        (leg.clone(), AriCall::RecordBridge { bridge, params })
                    }
                };
                self.recordings.insert(
                    path.clone(),
                    Recording {
                        leg,
                        path: path.clone(),
                        started: false,
                    },
                );
                plain(vec![call])
            }
            MediaCommand::StopRecording { path, .. } => {
                plain(vec![AriCall::StopRecording { name: path.clone() }])
            }
            MediaCommand::Bridge { a, b } => self.plan_bridge(a, b),
            MediaCommand::Unbridge { leg } => {
                let l = self.need(leg)?;
                match &l.bridge {
                    Some(bridge) => plain(vec![AriCall::RemoveChannels {
                        bridge: bridge.clone(),
                        channels: vec![leg.to_string()],
                    }]),
                    None => plain(vec![]),
                }
            }
            MediaCommand::Conference { room, action } => self.plan_conference(room, action),
            MediaCommand::Transfer {
                leg,
                extension,
                context,
            } => {
                self.need(leg)?;
                if let Some(l) = self.legs.get_mut(leg) {
                    l.continuing = true;
                }
                plain(vec![AriCall::Continue {
                    channel: leg.to_string(),
                    context: context.clone(),
                    extension: extension.clone(),
                }])
            }
            MediaCommand::SendDtmf { leg, digits } => {
                self.need(leg)?;
                if digits.is_empty()
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | ','))
                {
                    return Err(PlanError::Invalid(format!(
                        "DTMF digits must be 0-9, *, #, A-D: {digits:?}"
                    )));
                }
                plain(vec![AriCall::SendDtmf {
                    channel: leg.to_string(),
                    digits: digits.clone(),
                }])
            }
            MediaCommand::SetVariable { leg, name, value } => {
                self.need(leg)?;
                if name.is_empty() {
                    return Err(PlanError::Invalid("a variable needs a name".to_owned()));
                }
                plain(vec![AriCall::SetVariable {
                    channel: leg.to_string(),
                    name: name.clone(),
                    value: value.clone(),
                }])
            }
        }
    }

    fn plan_originate(&mut self, request: &OriginateRequest) -> Result<Plan, PlanError> {
        if self.legs.contains_key(&request.leg) {
            return Err(PlanError::Invalid(format!(
                "leg {} already exists",
                request.leg
            )));
        }
        let endpoint = endpoint_of(&request.target);
        let mut variables: BTreeMap<String, String> = request.variables.clone();
        variables.insert(CONTACT_VARIABLE.to_owned(), contact_text(request.contact));
        let caller_id = match (&request.caller_id_name, &request.caller_id_number) {
            (Some(name), Some(number)) => Some(format!("{name} <{number}>")),
            (None, Some(number)) => Some(format!("<{number}>")),
            (Some(name), None) => Some(name.clone()),
            (None, None) => None,
        };
        let is_local = matches!(request.target, OriginateTarget::Local { .. })
            || endpoint.starts_with("Local/");
        let params = OriginateParams {
            endpoint,
            app: Some(self.app.clone()),
            app_args: Some(format!("{APP_ARG},{}", contact_text(request.contact))),
            caller_id,
            timeout: Some(request.timeout.as_secs().max(1) as i64),
            channel_id: Some(request.leg.to_string()),
            other_channel_id: is_local.then(|| format!("{};2", request.leg)),
            variables,
            ..OriginateParams::default()
        };
        self.ended.remove(&request.leg);
        self.legs.insert(
            request.leg.clone(),
            Leg::new(LegDirection::Outbound, Some(request.contact)),
        );
        Ok(Plan {
            calls: vec![AriCall::Originate(params)],
            kind: PlanKind::Originate(request.leg.clone()),
        })
    }

    fn plan_bridge(&mut self, a: &LegId, b: &LegId) -> Result<Plan, PlanError> {
        let bridge_a = self.need(a)?.bridge.clone();
        let bridge_b = self.need(b)?.bridge.clone();
        let mut calls = Vec::new();
        if bridge_a.is_some() && bridge_a == bridge_b {
            return Ok(Plan {
                calls,
                kind: PlanKind::Plain,
            });
        }
        if let Some(bb) = &bridge_b {
            calls.push(AriCall::RemoveChannels {
                bridge: bb.clone(),
                channels: vec![b.to_string()],
            });
        }
        match bridge_a {
            Some(ba) => calls.push(AriCall::AddChannels {
                bridge: ba,
                channels: vec![b.to_string()],
            }),
            None => {
                let bridge = format!("{BRIDGE_PREFIX}{a}");
                calls.push(AriCall::CreateBridge {
                    bridge: bridge.clone(),
                    name: format!("switchboard {a}+{b}"),
                });
                calls.push(AriCall::AddChannels {
                    bridge,
                    channels: vec![a.to_string(), b.to_string()],
                });
            }
        }
        Ok(Plan {
            calls,
            kind: PlanKind::Plain,
        })
    }

    fn plan_conference(
        &mut self,
        room: &str,
        action: &ConferenceAction,
    ) -> Result<Plan, PlanError> {
        let bridge = format!("{CONFERENCE_PREFIX}{room}");
        let plain = |calls| {
            Ok(Plan {
                calls,
                kind: PlanKind::Plain,
            })
        };
        match action {
            ConferenceAction::Join { leg } => {
                let current = self.need(leg)?.bridge.clone();
                let mut calls = Vec::new();
                if let Some(other) = current {
                    if other == bridge {
                        return plain(calls);
                    }
                    calls.push(AriCall::RemoveChannels {
                        bridge: other,
                        channels: vec![leg.to_string()],
                    });
                }
                if !self.bridges.contains_key(&bridge) {
                    calls.push(AriCall::CreateBridge {
                        bridge: bridge.clone(),
                        name: format!("conference {room}"),
                    });
                }
                calls.push(AriCall::AddChannels {
                    bridge,
                    channels: vec![leg.to_string()],
                });
                plain(calls)
            }
            ConferenceAction::Leave { leg } => {
                self.need(leg)?;
                plain(vec![AriCall::RemoveChannels {
                    bridge,
                    channels: vec![leg.to_string()],
                }])
            }
            ConferenceAction::Mute { leg } => {
                self.need(leg)?;
                plain(vec![AriCall::Mute {
                    channel: leg.to_string(),
                }])
            }
            ConferenceAction::Unmute { leg } => {
                self.need(leg)?;
                plain(vec![AriCall::Unmute {
                    channel: leg.to_string(),
                }])
            }
            ConferenceAction::Kick { leg } => {
                self.need(leg)?;
                plain(vec![
                    AriCall::RemoveChannels {
                        bridge,
                        channels: vec![leg.to_string()],
                    },
                    AriCall::Hangup {
                        channel: leg.to_string(),
                        reason_code: Some(16),
                    },
                ])
            }
            ConferenceAction::List => Ok(Plan {
                calls: vec![AriCall::ListBridge {
                    bridge: bridge.clone(),
                }],
                kind: PlanKind::ListConference(bridge),
            }),
        }
    }

    /// The originate of `leg` was accepted (its HTTP reply): announces the leg if no event did.
    pub fn on_originated(&mut self, leg: &LegId, channel: &Channel) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        self.announce(leg, Some(channel), &mut out);
        out
    }

    /// The originate of `leg` failed: forget it.
    pub fn on_originate_failed(&mut self, leg: &LegId) {
        self.legs.remove(leg);
    }

    /// A call of a plan succeeded: keep the bridge map right before its events arrive.
    pub fn on_call_done(&mut self, call: &AriCall) {
        match call {
            AriCall::CreateBridge { bridge, .. } => {
                self.bridges.entry(bridge.clone()).or_default();
            }
            AriCall::AddChannels { bridge, channels } => {
                for c in channels {
                    let leg = LegId::new(c.as_str());
                    self.move_into(&leg, bridge);
                }
            }
            AriCall::RemoveChannels { bridge, channels } => {
                for c in channels {
                    let leg = LegId::new(c.as_str());
                    self.remove_from(&leg, bridge);
                }
            }
            AriCall::DestroyBridge { bridge } => {
                self.bridges.remove(bridge);
            }
            _ => {}
        }
    }

    /// Notes what the controller is being told of `leg`'s bridge.
    fn told(&mut self, leg: &LegId, bridge: Option<&str>) {
        if let Some(l) = self.legs.get_mut(leg) {
            l.told_bridge = bridge.map(str::to_owned);
        }
    }

    fn move_into(&mut self, leg: &LegId, bridge: &str) {
        if let Some(old) = self.legs.get(leg).and_then(|l| l.bridge.clone())
            && old != bridge
        {
            self.remove_from(leg, &old);
        }
        let members = self.bridges.entry(bridge.to_owned()).or_default();
        if !members.iter().any(|m| m == leg.as_str()) {
            members.push(leg.to_string());
        }
        if let Some(l) = self.legs.get_mut(leg) {
            l.bridge = Some(bridge.to_owned());
        }
    }

    fn remove_from(&mut self, leg: &LegId, bridge: &str) {
        if let Some(members) = self.bridges.get_mut(bridge) {
            members.retain(|m| m != leg.as_str());
        }
        if let Some(l) = self.legs.get_mut(leg)
            && l.bridge.as_deref() == Some(bridge)
        {
            l.bridge = None;
        }
    }

    fn announce(&mut self, leg: &LegId, channel: Option<&Channel>, out: &mut Vec<MediaEvent>) {
        let Some(l) = self.legs.get_mut(leg) else {
            return;
        };
        if let Some(c) = channel {
            if l.caller.is_none() && !c.caller.number.is_empty() {
                l.caller = Some(c.caller.number.clone());
            }
            if l.destination.is_none() && !c.dialplan.exten.is_empty() {
                l.destination = Some(c.dialplan.exten.clone());
            }
        }
        if !l.announced {
            l.announced = true;
            out.push(MediaEvent::LegCreated {
                leg: leg.clone(),
                contact: l.contact,
                direction: l.direction,
                caller: l.caller.clone(),
                destination: l.destination.clone(),
            });
        }
    }

    fn answered(&mut self, leg: &LegId, out: &mut Vec<MediaEvent>) {
        if let Some(l) = self.legs.get_mut(leg)
            && !l.answered
        {
            l.answered = true;
            out.push(MediaEvent::Answered { leg: leg.clone() });
        }
    }

    fn end(&mut self, leg: &LegId, cause: Option<HangupCause>, out: &mut Vec<MediaEvent>) {
        let Some(l) = self.legs.remove(leg) else {
            return;
        };
        if !l.announced {
            out.push(MediaEvent::LegCreated {
                leg: leg.clone(),
                contact: l.contact,
                direction: l.direction,
                caller: l.caller.clone(),
                destination: l.destination.clone(),
            });
        }
        if let Some(bridge) = &l.bridge
            && let Some(members) = self.bridges.get_mut(bridge)
        {
            members.retain(|m| m != leg.as_str());
        }
        self.playbacks.retain(|_, (p, _)| p != leg);
        let cause = cause
            .or(l.hangup_cause)
            .unwrap_or_else(HangupCause::normal_clearing);
        out.push(MediaEvent::HungUp {
            leg: leg.clone(),
            cause,
        });
        out.push(MediaEvent::Destroyed { leg: leg.clone() });
        self.ended.insert(leg.clone());
        if self.ended.len() > 10_000 {
            self.ended.clear();
        }
    }

    fn conference_room(bridge: &str) -> Option<&str> {
        bridge.strip_prefix(CONFERENCE_PREFIX)
    }

    /// Maps one ARI event to normalised events (often none: most ARI events are detail).
    pub fn on_event(&mut self, event: &AriEvent) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        match &event.kind {
            EventKind::StasisStart { channel, .. } => {
                let leg = LegId::new(channel.id.as_str());
                if !self.legs.contains_key(&leg) {
                    let contact = channel
                        .channelvars
                        .as_ref()
                        .and_then(|v| v.get(CONTACT_VARIABLE))
                        .and_then(|t| parse_contact(t));
                    self.ended.remove(&leg);
                    self.legs
                        .insert(leg.clone(), Leg::new(LegDirection::Inbound, contact));
                }
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.continuing = false;
                }
                self.announce(&leg, Some(channel), &mut out);
                if channel.state == ChannelState::Up {
                    self.answered(&leg, &mut out);
                }
            }
            EventKind::ChannelCreated { channel } => {
                let leg = LegId::new(channel.id.as_str());
                self.announce(&leg, Some(channel), &mut out);
            }
            EventKind::ChannelStateChange { channel } => {
                let leg = LegId::new(channel.id.as_str());
                if channel.state == ChannelState::Up && self.legs.contains_key(&leg) {
                    self.announce(&leg, Some(channel), &mut out);
                    self.answered(&leg, &mut out);
                }
            }
            EventKind::Dial {
                peer, dialstatus, ..
            } => {
                let leg = LegId::new(peer.id.as_str());
                if self.legs.contains_key(&leg) {
                    self.announce(&leg, Some(peer), &mut out);
                    if dialstatus == "ANSWER" {
                        self.answered(&leg, &mut out);
                    }
                }
            }
            EventKind::ChannelHangupRequest {
                cause,
                soft,
                channel,
                ..
            } => {
                let leg = LegId::new(channel.id.as_str());
                if let (Some(l), Some(code), false) =
                    (self.legs.get_mut(&leg), cause, soft.unwrap_or(false))
                {
                    // Soft requests carry a flag bitmask, not Q.850; skip them.
                    l.hangup_cause = Some(cause_from_code(*code));
                }
            }
            EventKind::StasisEnd { channel } => {
                let leg = LegId::new(channel.id.as_str());
                let continuing = self.legs.get(&leg).map(|l| l.continuing);
                match continuing {
                    Some(true) => {
                        // Sent to the dialplan by Switchboard: alive, no longer in a bridge.
                        if let Some(bridge) = self.legs.get(&leg).and_then(|l| l.bridge.clone()) {
                            self.remove_from(&leg, &bridge);
                            self.told(&leg, None);
                            out.push(MediaEvent::Unbridged { leg });
                        }
                    }
                    Some(false) => self.end(&leg, None, &mut out),
                    None => {}
                }
            }
            EventKind::ChannelDestroyed { cause, channel, .. } => {
                let leg = LegId::new(channel.id.as_str());
                self.end(&leg, Some(cause_from_code(*cause)), &mut out);
            }
            EventKind::ChannelEnteredBridge { bridge, channel } => {
                let Some(channel) = channel else {
                    return out;
                };
                let leg = LegId::new(channel.id.as_str());
                if !self.legs.contains_key(&leg) {
                    return out;
                }
                let was = self.legs.get(&leg).and_then(|l| l.bridge.clone());
                self.bridges
                    .insert(bridge.id.clone(), bridge.channels.clone());
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.bridge = Some(bridge.id.clone());
                }
                if let Some(old) = was.filter(|o| *o != bridge.id) {
                    self.remove_from(&leg, &old);
                    if let Some(l) = self.legs.get_mut(&leg) {
                        l.bridge = Some(bridge.id.clone());
                    }
                }
                if let Some(room) = Self::conference_room(&bridge.id) {
                    self.told(&leg, Some(&bridge.id));
                    out.push(MediaEvent::ConferenceJoined {
                        room: room.to_owned(),
                        leg,
                        member: None,
                    });
                } else if bridge.channels.len() == 2
                    && let Some(other) = bridge.channels.iter().find(|c| *c != &channel.id)
                {
                    let other = LegId::new(other.as_str());
                    self.told(&leg, Some(&bridge.id));
                    self.told(&other, Some(&bridge.id));
                    out.push(MediaEvent::Bridged { a: other, b: leg });
                }
            }
            EventKind::ChannelLeftBridge { bridge, channel } => {
                let leg = LegId::new(channel.id.as_str());
                self.bridges
                    .insert(bridge.id.clone(), bridge.channels.clone());
                let in_it = self
                    .legs
                    .get(&leg)
                    .is_some_and(|l| l.bridge.as_deref() == Some(bridge.id.as_str()));
                if let Some(l) = self.legs.get_mut(&leg)
                    && in_it
                {
                    l.bridge = None;
                }
                if self.legs.contains_key(&leg) {
                    if in_it {
                        self.told(&leg, None);
                    }
                    if let Some(room) = Self::conference_room(&bridge.id) {
                        out.push(MediaEvent::ConferenceLeft {
                            room: room.to_owned(),
                            leg,
                        });
                    } else {
                        out.push(MediaEvent::Unbridged { leg });
                    }
                }
            }
            EventKind::BridgeDestroyed { bridge } => {
                self.bridges.remove(&bridge.id);
                for l in self.legs.values_mut() {
                    if l.bridge.as_deref() == Some(bridge.id.as_str()) {
                        l.bridge = None;
                    }
                }
            }
            EventKind::ChannelDtmfReceived {
                digit,
                duration_ms,
                channel,
            } => {
                let leg = LegId::new(channel.id.as_str());
                if let (true, Some(d)) = (self.legs.contains_key(&leg), digit.chars().next()) {
                    out.push(MediaEvent::Dtmf {
                        leg,
                        digit: d,
                        duration: Duration::from_millis((*duration_ms).max(0) as u64),
                    });
                }
            }
            EventKind::ChannelVarset {
                variable,
                value,
                channel: Some(channel),
            } if variable == CONTACT_VARIABLE => {
                let leg = LegId::new(channel.id.as_str());
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.contact = parse_contact(value);
                }
            }
            EventKind::PlaybackStarted { playback } => {
                let id = playback.id.clone();
                let known = self
                    .playbacks
                    .get(&id)
                    .map(|(leg, started)| (leg.clone(), *started));
                let leg = match &known {
                    Some((leg, _)) => Some(leg.clone()),
                    None => leg_of_target(&playback.target_uri)
                        .map(LegId::new)
                        .filter(|l| self.legs.contains_key(l)),
                };
                if let Some(leg) = leg
                    && !known.as_ref().is_some_and(|(_, started)| *started)
                {
                    self.playbacks.insert(id.clone(), (leg.clone(), true));
                    out.push(MediaEvent::PlaybackStarted {
                        leg,
                        playback: Some(id),
                    });
                }
            }
            EventKind::PlaybackFinished { playback } => {
                let leg = match self.playbacks.remove(&playback.id) {
                    Some((leg, _)) => Some(leg),
                    None => leg_of_target(&playback.target_uri)
                        .map(LegId::new)
                        .filter(|l| self.legs.contains_key(l)),
                };
                if let Some(leg) = leg {
                    if playback.state == "failed" {
                        tracing::warn!(playback = %playback.id, media = %playback.media_uri, "ARI playback failed");
                    }
                    out.push(MediaEvent::PlaybackFinished {
                        leg,
                        playback: Some(playback.id.clone()),
                    });
                }
            }
            EventKind::RecordingStarted { recording } => {
                if let Some(r) = self.recordings.get_mut(&recording.name)
                    && !r.started
                {
                    r.started = true;
                    out.push(MediaEvent::RecordingStarted {
                        leg: r.leg.clone(),
                        path: r.path.clone(),
                    });
                }
            }
            EventKind::RecordingFinished { recording }
            | EventKind::RecordingFailed { recording } => {
                if let Some(r) = self.recordings.remove(&recording.name) {
                    if recording.state == "failed" || recording.cause.is_some() {
                        tracing::warn!(recording = %recording.name, cause = ?recording.cause, "ARI recording failed");
                    }
                    out.push(MediaEvent::RecordingFinished {
                        leg: r.leg,
                        path: r.path,
                        duration: recording
                            .duration
                            .map(|s| Duration::from_secs(s.max(0) as u64)),
                    });
                }
            }
            _ => {}
        }
        out
    }

    /// After a (re)connect: the channels that exist now, with the contact each carries, and the
    /// bridges. Known legs that are gone end; tagged legs Switchboard did not know are adopted.
    pub fn resync(
        &mut self,
        channels: &[(Channel, Option<ContactId>)],
        bridges: &[Bridge],
    ) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        let present: HashSet<&str> = channels.iter().map(|(c, _)| c.id.as_str()).collect();
        let gone: Vec<LegId> = self
            .legs
            .keys()
            .filter(|l| !present.contains(l.as_str()))
            .cloned()
            .collect();
        for leg in gone {
            // A cause heard before the connection broke is the real one; else the switch took
            // the leg down with it.
            let cause = self
                .legs
                .get(&leg)
                .and_then(|l| l.hangup_cause.clone())
                .unwrap_or_else(HangupCause::switch_lost);
            self.end(&leg, Some(cause), &mut out);
        }
        for (channel, contact) in channels {
            let leg = LegId::new(channel.id.as_str());
            if !self.legs.contains_key(&leg) {
                // The `;2` half of a Local channel carries the variables too, but only the half
                // in the application is a leg.
                let in_app = channel.dialplan.app_name == "Stasis"
                    && channel.dialplan.app_data.split(',').next() == Some(self.app.as_str());
                if contact.is_none() || (channel.name.ends_with(";2") && !in_app) {
                    continue;
                }
                let direction = if channel.dialplan.app_name == "AppDial2" {
                    LegDirection::Outbound
                } else {
                    LegDirection::Inbound
                };
                self.legs.insert(leg.clone(), Leg::new(direction, *contact));
            } else if let (Some(l), Some(c)) = (self.legs.get_mut(&leg), contact) {
                l.contact = Some(*c);
            }
            self.announce(&leg, Some(channel), &mut out);
            if channel.state == ChannelState::Up {
                self.answered(&leg, &mut out);
            }
        }
        self.bridges = bridges
            .iter()
            .map(|b| (b.id.clone(), b.channels.clone()))
            .collect();
        // Against what the controller was told, not what commands did: a bridge made just
        // before the socket dropped has moved `bridge` but its event never came.
        let mut newly_bridged = Vec::new();
        for (id, leg) in self.legs.iter_mut() {
            let now = bridges
                .iter()
                .find(|b| b.channels.iter().any(|c| c == id.as_str()))
                .map(|b| b.id.clone());
            if now != leg.told_bridge {
                if now.is_none() {
                    out.push(MediaEvent::Unbridged { leg: id.clone() });
                } else {
                    newly_bridged.push(id.clone());
                }
            }
            leg.bridge.clone_from(&now);
            leg.told_bridge = now;
        }
        let mut pairs = BTreeSet::new();
        for leg in newly_bridged {
            if let Some(bridge) = self.bridges.get(self.bridge_of(&leg).unwrap_or_default())
                && bridge.len() == 2
                && let Some(other) = bridge.iter().find(|c| *c != leg.as_str())
            {
                let other = LegId::new(other.as_str());
                if self.legs.contains_key(&other) {
                    pairs.insert(if leg < other {
                        (leg, other)
                    } else {
                        (other, leg)
                    });
                }
            }
        }
        for (a, b) in pairs {
            out.push(MediaEvent::Bridged { a, b });
        }
        out
    }

    /// The legs as the handler lists them for the controller.
    pub fn snapshot(&self) -> Vec<LegSnapshot> {
        let mut legs: Vec<LegSnapshot> = self
            .legs
            .iter()
            .map(|(id, l)| LegSnapshot {
                leg: id.clone(),
                contact: l.contact,
                answered: l.answered,
                bridged_to: l.bridge.as_ref().and_then(|b| {
                    let members = self.bridges.get(b)?;
                    if members.len() != 2 {
                        return None;
                    }
                    members
                        .iter()
                        .find(|m| *m != id.as_str())
                        .map(|m| LegId::new(m.as_str()))
                }),
            })
            .collect();
        legs.sort_by(|a, b| a.leg.cmp(&b.leg));
        legs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::asterisk::event::decode_event;

    fn ev(json: &str) -> AriEvent {
        decode_event(json.as_bytes()).unwrap()
    }

    fn channel_json(id: &str, state: &str) -> String {
        format!(
            r#"{{"id":"{id}","name":"PJSIP/x-1","state":"{state}","protocol_id":"","caller":{{"name":"","number":"5551000"}},"connected":{{"name":"","number":""}},"accountcode":"","dialplan":{{"context":"cc-inbound","exten":"1000","priority":2,"app_name":"Stasis","app_data":"cc"}},"creationtime":"2026-11-21T21:13:08.568+0000","language":"en"}}"#
        )
    }

    fn event(kind: &str, extra: &str, id: &str, state: &str) -> AriEvent {
        ev(&format!(
            r#"{{"type":"{kind}",{extra}"timestamp":"2026-11-21T21:13:08.568+0000","channel":{},"application":"cc"}}"#,
            channel_json(id, state)
        ))
    }

    fn originate(state: &mut AdapterState, leg: &str) -> Plan {
        state
            .plan(&MediaCommand::Originate(OriginateRequest {
                target: OriginateTarget::SipUser {
                    user: "agent".into(),
                    domain: None,
                },
                contact: ContactId(42),
                leg: LegId::new(leg),
                caller_id_number: Some("7000".into()),
                caller_id_name: Some("CC".into()),
                variables: BTreeMap::new(),
                timeout: Duration::from_secs(20),
            }))
            .unwrap()
    }

    #[test]
    fn an_originate_carries_the_contact_and_the_chosen_id() {
        let mut s = AdapterState::new("cc");
        let plan = originate(&mut s, "leg-1");
        let AriCall::Originate(p) = &plan.calls[0] else {
            panic!()
        };
        assert_eq!(p.channel_id.as_deref(), Some("leg-1"));
        assert_eq!(p.endpoint, "PJSIP/agent");
        assert_eq!(p.app.as_deref(), Some("cc"));
        assert_eq!(
            p.variables.get(CONTACT_VARIABLE).map(String::as_str),
            Some("42")
        );
        assert_eq!(p.caller_id.as_deref(), Some("CC <7000>"));
        assert_eq!(p.other_channel_id, None);
        // Events that arrive before the HTTP reply are matched by the id.
        let out = s.on_event(&event("ChannelCreated", "", "leg-1", "Down"));
        assert!(matches!(
            &out[..],
            [MediaEvent::LegCreated {
                contact: Some(ContactId(42)),
                direction: LegDirection::Outbound,
                ..
            }]
        ));
        let out = s.on_event(&event("StasisStart", r#""args":[],"#, "leg-1", "Up"));
        assert_eq!(
            out,
            vec![MediaEvent::Answered {
                leg: LegId::new("leg-1")
            }]
        );
    }

    #[test]
    fn no_answer_ends_the_leg_with_q850_19() {
        let mut s = AdapterState::new("cc");
        originate(&mut s, "noans");
        let out = s.on_event(&event(
            "ChannelDestroyed",
            r#""cause":19,"cause_txt":"User alerting, no answer","#,
            "noans",
            "Ringing",
        ));
        assert_eq!(
            out,
            vec![
                MediaEvent::LegCreated {
                    leg: LegId::new("noans"),
                    contact: Some(ContactId(42)),
                    direction: LegDirection::Outbound,
                    caller: None,
                    destination: None
                },
                MediaEvent::HungUp {
                    leg: LegId::new("noans"),
                    cause: HangupCause::no_answer()
                },
                MediaEvent::Destroyed {
                    leg: LegId::new("noans")
                },
            ]
        );
    }

    #[test]
    fn busy_is_read_from_the_hangup_request_and_stasis_end_closes_the_leg() {
        let mut s = AdapterState::new("cc");
        originate(&mut s, "busy");
        s.on_event(&event("StasisStart", r#""args":[],"#, "busy", "Down"));
        assert!(
            s.on_event(&event(
                "ChannelHangupRequest",
                r#""cause":17,"tech_cause":486,"#,
                "busy",
                "Down"
            ))
            .is_empty()
        );
        let out = s.on_event(&event("StasisEnd", "", "busy", "Down"));
        assert_eq!(
            out[0],
            MediaEvent::HungUp {
                leg: LegId::new("busy"),
                cause: HangupCause::user_busy()
            }
        );
        assert_eq!(
            out[1],
            MediaEvent::Destroyed {
                leg: LegId::new("busy")
            }
        );
        // A late ChannelDestroyed says nothing new.
        assert!(
            s.on_event(&event(
                "ChannelDestroyed",
                r#""cause":17,"cause_txt":"User busy","#,
                "busy",
                "Down"
            ))
            .is_empty()
        );
    }

    #[test]
    fn soft_hangup_flags_are_not_q850() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event(
            "StasisStart",
            r#""args":["sip-inbound","1000"],"#,
            "in-1",
            "Ring",
        ));
        s.on_event(&event(
            "ChannelHangupRequest",
            r#""cause":32,"soft":true,"#,
            "in-1",
            "Up",
        ));
        let out = s.on_event(&event("StasisEnd", "", "in-1", "Up"));
        assert_eq!(
            out[0],
            MediaEvent::HungUp {
                leg: LegId::new("in-1"),
                cause: HangupCause::normal_clearing()
            }
        );
    }

    #[test]
    fn inbound_legs_are_announced_with_caller_and_answered_on_up() {
        let mut s = AdapterState::new("cc");
        let out = s.on_event(&event(
            "StasisStart",
            r#""args":["sip-inbound","1000"],"#,
            "in-1",
            "Ring",
        ));
        assert_eq!(
            out,
            vec![MediaEvent::LegCreated {
                leg: LegId::new("in-1"),
                contact: None,
                direction: LegDirection::Inbound,
                caller: Some("5551000".into()),
                destination: Some("1000".into())
            }]
        );
        let out = s.on_event(&event("ChannelStateChange", "", "in-1", "Up"));
        assert_eq!(
            out,
            vec![MediaEvent::Answered {
                leg: LegId::new("in-1")
            }]
        );
        assert!(
            s.on_event(&event("ChannelStateChange", "", "in-1", "Up"))
                .is_empty()
        );
        let out = s.on_event(&event(
            "ChannelDtmfReceived",
            r##""digit":"#","duration_ms":280,"##,
            "in-1",
            "Up",
        ));
        assert_eq!(
            out,
            vec![MediaEvent::Dtmf {
                leg: LegId::new("in-1"),
                digit: '#',
                duration: Duration::from_millis(280)
            }]
        );
    }

    #[test]
    fn bridging_creates_one_bridge_then_reuses_it() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "a", "Up"));
        s.on_event(&event("StasisStart", r#""args":[],"#, "b", "Up"));
        s.on_event(&event("StasisStart", r#""args":[],"#, "c", "Up"));
        let plan = s
            .plan(&MediaCommand::Bridge {
                a: LegId::new("a"),
                b: LegId::new("b"),
            })
            .unwrap();
        assert_eq!(
            plan.calls,
            vec![
                AriCall::CreateBridge {
                    bridge: "sb-br-a".into(),
                    name: "switchboard a+b".into()
                },
                AriCall::AddChannels {
                    bridge: "sb-br-a".into(),
                    channels: vec!["a".into(), "b".into()]
                },
            ]
        );
        for c in &plan.calls {
            s.on_call_done(c);
        }
        assert_eq!(s.bridge_of(&LegId::new("b")), Some("sb-br-a"));
        // c replaces b: b leaves first, then c joins a's bridge.
        let plan = s
            .plan(&MediaCommand::Bridge {
                a: LegId::new("a"),
                b: LegId::new("c"),
            })
            .unwrap();
        assert_eq!(
            plan.calls,
            vec![AriCall::AddChannels {
                bridge: "sb-br-a".into(),
                channels: vec!["c".into()]
            }]
        );
        let plan = s
            .plan(&MediaCommand::Unbridge {
                leg: LegId::new("b"),
            })
            .unwrap();
        assert_eq!(
            plan.calls,
            vec![AriCall::RemoveChannels {
                bridge: "sb-br-a".into(),
                channels: vec!["b".into()]
            }]
        );
        assert_eq!(
            s.plan(&MediaCommand::Answer {
                leg: LegId::new("zz")
            }),
            Err(PlanError::NoSuchLeg("zz".into()))
        );
    }

    #[test]
    fn a_caller_hanging_up_first_leaves_the_other_leg_unbridged() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "cust", "Up"));
        s.on_event(&event("StasisStart", r#""args":[],"#, "agent", "Up"));
        let bridge = |chs: &str| {
            format!(
                r#""bridge":{{"id":"hbr","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"","channels":[{chs}],"creationtime":"2026-11-21T21:16:19.355+0000","video_mode":"talker"}},"#
            )
        };
        s.on_event(&event(
            "ChannelEnteredBridge",
            &bridge(r#""cust""#),
            "cust",
            "Up",
        ));
        let out = s.on_event(&event(
            "ChannelEnteredBridge",
            &bridge(r#""cust","agent""#),
            "agent",
            "Up",
        ));
        assert_eq!(
            out,
            vec![MediaEvent::Bridged {
                a: LegId::new("cust"),
                b: LegId::new("agent")
            }]
        );
        // Remote BYE: a hangup request with no cause, then left bridge, then StasisEnd.
        assert!(
            s.on_event(&event("ChannelHangupRequest", "", "cust", "Up"))
                .is_empty()
        );
        let out = s.on_event(&event(
            "ChannelLeftBridge",
            &bridge(r#""agent""#),
            "cust",
            "Up",
        ));
        assert_eq!(
            out,
            vec![MediaEvent::Unbridged {
                leg: LegId::new("cust")
            }]
        );
        let out = s.on_event(&event("StasisEnd", "", "cust", "Up"));
        assert_eq!(
            out[0],
            MediaEvent::HungUp {
                leg: LegId::new("cust"),
                cause: HangupCause::normal_clearing()
            }
        );
        // The agent is still in the bridge the caller left behind.
        assert_eq!(s.bridge_of(&LegId::new("agent")), Some("hbr"));
    }

    #[test]
    fn transfer_keeps_the_leg_alive_through_stasis_end() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "x", "Up"));
        s.plan(&MediaCommand::Transfer {
            leg: LegId::new("x"),
            extension: "s".into(),
            context: "cc-after".into(),
        })
        .unwrap();
        assert!(s.on_event(&event("StasisEnd", "", "x", "Up")).is_empty());
        assert!(s.knows(&LegId::new("x")));
        assert!(
            s.on_event(&event("StasisStart", r#""args":["returned"],"#, "x", "Up"))
                .is_empty()
        );
    }

    #[test]
    fn resync_ends_vanished_legs_and_adopts_tagged_ones() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "old", "Up"));
        let tagged: Channel = serde_json::from_str(&channel_json("new", "Up")).unwrap();
        let untagged: Channel = serde_json::from_str(&channel_json("other", "Up")).unwrap();
        let out = s.resync(&[(tagged, Some(ContactId(7))), (untagged, None)], &[]);
        // No cause was heard before it vanished: the switch took it down.
        assert_eq!(
            out[0],
            MediaEvent::HungUp {
                leg: LegId::new("old"),
                cause: HangupCause::switch_lost()
            }
        );
        assert_eq!(
            out[1],
            MediaEvent::Destroyed {
                leg: LegId::new("old")
            }
        );
        assert!(matches!(
            &out[2],
            MediaEvent::LegCreated {
                contact: Some(ContactId(7)),
                ..
            }
        ));
        assert_eq!(
            out[3],
            MediaEvent::Answered {
                leg: LegId::new("new")
            }
        );
        assert_eq!(s.snapshot().len(), 1);
    }

    #[test]
    fn a_bridge_whose_events_were_lost_with_the_socket_is_reported_at_resync() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "cust", "Up"));
        s.on_event(&event("StasisStart", r#""args":[],"#, "agent", "Up"));
        // The bridge commands succeeded; the socket dropped before ChannelEnteredBridge came.
        s.on_call_done(&AriCall::CreateBridge {
            bridge: "br".into(),
            name: "br".into(),
        });
        s.on_call_done(&AriCall::AddChannels {
            bridge: "br".into(),
            channels: vec!["cust".into(), "agent".into()],
        });
        let channel = |id: &str| -> (Channel, Option<ContactId>) {
            (serde_json::from_str(&channel_json(id, "Up")).unwrap(), None)
        };
        let bridge: Bridge = serde_json::from_str(
            r#"{"id":"br","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"br","channels":["cust","agent"],"creationtime":"2026-11-21T21:16:19.355+0000","video_mode":"talker"}"#,
        )
        .unwrap();
        let channels = [channel("cust"), channel("agent")];
        let bridged = |out: &[MediaEvent]| -> Vec<MediaEvent> {
            out.iter()
                .filter(|e| matches!(e, MediaEvent::Bridged { .. }))
                .cloned()
                .collect()
        };
        let out = s.resync(&channels, std::slice::from_ref(&bridge));
        assert_eq!(
            bridged(&out),
            vec![MediaEvent::Bridged {
                a: LegId::new("agent"),
                b: LegId::new("cust")
            }],
            "once, though both legs are new to the controller: {out:?}"
        );
        // Told once: the next resync has nothing new to say of it.
        let out = s.resync(&channels, std::slice::from_ref(&bridge));
        assert!(bridged(&out).is_empty(), "{out:?}");
        // The bridge is gone by the next resync: both legs are unbridged.
        let out = s.resync(&channels, &[]);
        assert_eq!(
            out.iter()
                .filter(|e| matches!(e, MediaEvent::Unbridged { .. }))
                .count(),
            2,
            "{out:?}"
        );
    }

    #[test]
    fn playback_and_recording_events_are_reported_once() {
        let mut s = AdapterState::new("cc");
        s.on_event(&event("StasisStart", r#""args":[],"#, "a", "Up"));
        s.plan(&MediaCommand::Play {
            leg: LegId::new("a"),
            source: PlaySource::File("hello-world".into()),
            playback: "pb1".into(),
        })
        .unwrap();
        let pb = |t: &str, st: &str| {
            ev(&format!(
                r#"{{"type":"{t}","timestamp":"2026-11-21T21:13:08.568+0000","playback":{{"id":"pb1","media_uri":"sound:hello-world","target_uri":"channel:a","language":"en","state":"{st}"}},"application":"cc"}}"#
            ))
        };
        assert_eq!(s.on_event(&pb("PlaybackStarted", "playing")).len(), 1);
        assert_eq!(s.on_event(&pb("PlaybackStarted", "playing")).len(), 0);
        assert_eq!(s.on_event(&pb("PlaybackFinished", "done")).len(), 1);
        s.on_event(&event("StasisStart", r#""args":[],"#, "b", "Up"));
        s.plan(&MediaCommand::Bridge {
            a: LegId::new("a"),
            b: LegId::new("b"),
        })
        .unwrap()
        .calls
        .iter()
        .for_each(|c| s.on_call_done(c));
        let plan = s
            .plan(&MediaCommand::StartRecording {
                target: RecordTarget::Bridge {
                    leg: LegId::new("a"),
                },
                path: "rec1".into(),
                format: RecordFormat::Wav,
            })
            .unwrap();
        assert!(
            matches!(&plan.calls[0], AriCall::RecordBridge { bridge, .. } if bridge == "sb-br-a")
        );
        let rec = |t: &str, st: &str| {
            ev(&format!(
                r#"{{"type":"{t}","timestamp":"2026-11-21T21:13:08.568+0000","recording":{{"name":"rec1","format":"wav","state":"{st}","target_uri":"bridge:sb-br-a","duration":4}},"application":"cc"}}"#
            ))
        };
        assert_eq!(s.on_event(&rec("RecordingStarted", "recording")).len(), 1);
        assert_eq!(s.on_event(&rec("RecordingStarted", "recording")).len(), 0);
        let out = s.on_event(&rec("RecordingFinished", "done"));
        assert_eq!(
            out,
            vec![MediaEvent::RecordingFinished {
                leg: LegId::new("a"),
                path: "rec1".into(),
                duration: Some(Duration::from_secs(4))
            }]
        );
        assert!(s.on_event(&rec("RecordingFinished", "done")).is_empty());
    }

    #[test]
    fn targets_and_sources_map_to_ari_names() {
        assert_eq!(
            endpoint_of(&OriginateTarget::Gateway {
                gateway: "trunk".into(),
                number: "15551234".into()
            }),
            "PJSIP/15551234@trunk"
        );
        assert_eq!(
            endpoint_of(&OriginateTarget::Local {
                extension: "100".into(),
                context: "cc-test".into()
            }),
            "Local/100@cc-test"
        );
        assert_eq!(
            media_uri(&PlaySource::File("hello-world".into())).as_deref(),
            Some("sound:hello-world")
        );
        assert_eq!(
            media_uri(&PlaySource::File("recording:x".into())).as_deref(),
            Some("recording:x")
        );
        assert_eq!(
            media_uri(&PlaySource::Tone("ring;tonezone=us".into())).as_deref(),
            Some("tone:ring;tonezone=us")
        );
        assert_eq!(parse_contact(" 42 "), Some(ContactId(42)));
        assert_eq!(parse_contact("contact#42"), Some(ContactId(42)));
        assert_eq!(parse_contact("x"), None);
    }
}
