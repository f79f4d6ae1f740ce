import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * Resumability for one HTTP session: every message the server sends on a stream is kept here
 * under an event id, so a client that lost its connection and comes back with Last-Event-ID gets
 * what it missed — a tools/list_changed sent while it was away is not lost. In memory (a restart of
 * the server ends its sessions anyway) and bounded: the oldest events go first.
 */
export class InMemoryEventStore implements EventStore {
  private readonly events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage; seq: number }>();
  private seq = 0;

  constructor(private readonly limit = 1000) {}

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const seq = ++this.seq;
    // The stream id may contain any character (the SDK's own stream is "_GET_stream"): the sequence
    // number comes first and the map, not the id's text, says which stream an event belongs to.
    const eventId = `${seq}-${streamId}`;
    this.events.set(eventId, { streamId, message, seq });
    while (this.events.size > this.limit) {
      const oldest = this.events.keys().next().value;
      if (oldest === undefined) break;
      this.events.delete(oldest);
    }
    return eventId;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    // Map iteration is insertion order, which is sequence order.
    for (const [eventId, event] of this.events) {
      if (event.streamId !== last.streamId || event.seq <= last.seq) continue;
      // The priming event of a stream carries no message: nothing to replay.
      if (!('jsonrpc' in event.message)) continue;
      await send(eventId, event.message);
    }
    return last.streamId;
  }
}
