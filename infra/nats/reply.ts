/**
 * Answers only to inboxes (DESIGN §9, docs/security.md). A requester names where
 * the answer goes; an answer sent anywhere else would be written with the
 * answerer's authority. Inside ALCOR a requester's reply subject is its inbox
 * (`_INBOX.…`); from another account it is the server's response subject
 * (`_R_.…`), which leads back into the requester's own account. Anything else is
 * not answered.
 */
import type { Msg } from '@nats-io/transport-node';

const INBOX = /^(_INBOX|_R_)\.[^.*>\s]+/;

/** True when `reply` is an inbox a requester may be answered on. */
export function isInbox(reply: string | undefined): reply is string {
  return reply !== undefined && INBOX.test(reply);
}

/**
 * True when `msg` may be answered (its reply is an inbox); otherwise `refused` is
 * called (a metric) and the request is to be dropped unanswered.
 */
export function answerable(msg: Msg, refused: () => void): boolean {
  if (isInbox(msg.reply)) return true;
  refused();
  return false;
}

const encoder = new TextEncoder();

/**
 * Answers `msg` with `value` as JSON if its reply subject is an inbox; false if not
 * answered. An answer over the server's max_payload cannot be sent: the requester
 * gets a short `reply_too_large` error instead (ask for less at once), never silence.
 */
export function answerJson(msg: Msg, value: unknown): boolean {
  if (!isInbox(msg.reply)) return false;
  const bytes = encoder.encode(JSON.stringify(value));
  try {
    return msg.respond(bytes);
  } catch (err) {
    if (!/max_payload/i.test((err as Error).message)) throw err;
    return msg.respond(
      encoder.encode(
        JSON.stringify({
          error: {
            code: 'reply_too_large',
            message: `the answer takes ${bytes.length} bytes, over the server's max_payload: ask for less at once (fewer intents per batch)`,
          },
        }),
      ),
    );
  }
}
