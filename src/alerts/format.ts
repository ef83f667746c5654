// What an alert looks like to each kind of target: a mail with ldirectord's subject and body
// lines (ld_emailalert_send, ld_emailalert_net_smtp), Alertmanager's v2 alert, a chat service's
// {"text"}, or our own JSON object. Pure.
import type { WebhookFormat } from '../config/alerts.js';
import type { Alert } from './decide.js';

/** ldirectord's log line for the change, which is also its mail's subject. */
export function ldirectordLine(a: Alert): string {
  const where = `${a.endpoint} (${a.virtual})`;
  switch (a.name) {
    case 'server_down':
      if (a.repeat) return `Inaccessible real server: ${where}`;
      return a.quiesce
        ? `Quiescent real server: ${where} (Weight set to 0)`
        : `Deleted real server: ${where}`;
    case 'server_up':
      return `${a.quiesce ? 'Restored' : 'Added'} real server: ${where} (Weight set to ${a.weight ?? 0})`;
    case 'fallback_on':
      return `Added fallback server: ${where} (Weight set to ${a.weight ?? 1})`;
    case 'fallback_off':
      return `Deleted fallback server: ${where}`;
    // keepalived's words (its log: "Lost quorum", "Gained quorum"); ldirectord has no quorum.
    case 'quorum_down':
      return `Lost quorum: ${a.virtual} (healthy weight ${a.weight ?? 0})`;
    case 'quorum_up':
      return `Gained quorum: ${a.virtual} (healthy weight ${a.weight ?? 0})`;
  }
}

export function subject(a: Alert): string {
  // As ldirectord: a service with a name of its own (servicename) has it in front.
  return a.named ? `[${a.service}] ${ldirectordLine(a)}` : ldirectordLine(a);
}

/** The lines after ldirectord's three (host, Log-Message, Daemon-Status). */
function details(a: Alert): string[] {
  const server = a.name.startsWith('fallback')
    ? `Fallback server: ${a.endpoint}`
    : a.name.startsWith('quorum')
      ? `Virtual service: ${a.virtual}`
      : `Real server: ${a.server === a.endpoint ? a.endpoint : `${a.server} (${a.endpoint})`}`;
  return [
    `Service name: ${a.service}`,
    server,
    `Healthy: ${a.healthy} of ${a.servers}`,
    ...(a.message ? [`Reason: ${a.message}`] : []),
    ...(a.firing ? [`Since: ${new Date(a.since).toISOString()}`] : []),
  ];
}

export interface Mail {
  readonly subject: string;
  readonly text: string;
}

export function mail(a: Alert, host: string): Mail {
  const s = subject(a);
  return {
    subject: s,
    text: [
      `ipvs-warden host: ${host}`,
      `Log-Message: ${s}`,
      `Daemon-Status: ${a.phase}`,
      '',
      ...details(a),
      '',
    ].join('\n'),
  };
}

/** Alertmanager ends an alert at endsAt: a firing one is sent again before (Prometheus: 4x). */
export const ENDS_AFTER_REPEATS = 4;

export function alertmanagerAlert(a: Alert, host: string, repeatMs: number) {
  const server = a.name.startsWith('server');
  return {
    labels: {
      alertname: server ? 'IpvsRealServerDown' : 'IpvsServiceFallback',
      severity: server ? 'warning' : 'critical',
      service: a.service,
      virtual: a.virtual,
      protocol: a.protocol,
      ...(server ? { server: a.server, instance: a.endpoint } : {}),
      director: host,
    },
    annotations: {
      summary: subject(a),
      description: details(a).join('\n'),
    },
    startsAt: new Date(a.since).toISOString(),
    endsAt: new Date(a.firing ? a.at + ENDS_AFTER_REPEATS * repeatMs : a.at).toISOString(),
  };
}

function chatText(a: Alert, host: string): string {
  const mark = a.firing ? ':red_circle:' : ':large_green_circle:';
  const why = a.message ? `; ${a.message}` : '';
  return `${mark} ${subject(a)}: ${a.healthy} of ${a.servers} healthy${why} (ipvs-warden on ${host})`;
}

export function jsonEvent(a: Alert, host: string) {
  return {
    event: a.name,
    firing: a.firing,
    repeat: a.repeat,
    service: a.service,
    virtual: a.virtual,
    protocol: a.protocol,
    server: a.server,
    address: a.address,
    port: a.port,
    healthy: a.healthy,
    servers: a.servers,
    message: a.message,
    summary: subject(a),
    since: new Date(a.since).toISOString(),
    time: new Date(a.at).toISOString(),
    daemon_status: a.phase,
    director: host,
  };
}

/** A webhook's request body. */
export function webhookBody(
  format: WebhookFormat,
  a: Alert,
  host: string,
  repeatMs: number,
): string {
  switch (format) {
    case 'alertmanager':
      return JSON.stringify([alertmanagerAlert(a, host, repeatMs)]);
    case 'slack':
      return JSON.stringify({ text: chatText(a, host) });
    case 'json':
      return JSON.stringify(jsonEvent(a, host));
  }
}
