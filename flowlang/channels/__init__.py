"""The channels: takes each vendor's webhook payloads and the channel registry's rules (data),
gives normalised inbound events, the policy's verdict on every outbound message, and each
channel's send-API requests.

`registry` reads the rules (`data/channels.yaml`, with a deployment's overrides); `policy` and
`engine_policy` allow, block or degrade a reply by them; `inbound` normalises payloads, `ingest`
takes a webhook request to processed events (`signatures` checks it is the channel's);
`outbound` and `senders` deliver; `capabilities` is the registry as the checker sees it;
`text_length` and `sms_segments` count text as each channel does.
"""
