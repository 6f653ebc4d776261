"""How the lesson's publishers encode their sound.

The worker forwards what a publisher's encoder sends, unchanged, so what a
listener receives is the sum of what the speakers send. For a listener on a
weak connection ("audio only", docs/protocol.md) to stay within 64 kbit/s
while a teacher and a pupil speak, every publisher is asked, in the
worker's answer to its offer, to send Opus that fits (RFC 7587 §7):

- ``maxaveragebitrate``: at most OPUS_MAX_AVERAGE_BITRATE bit/s — plenty for
  speech (Opus is transparent for voice from about 20 kbit/s);
- ``usedtx=1``: discontinuous transmission, so silence costs one small
  packet every 400 ms instead of a packet every frame;
- ``stereo=0``: mono; ``useinbandfec=1``: losses are mended from the next
  packet;
- ``a=ptime``: OPUS_FRAME_MS frames. Each RTP packet carries some 40 bytes of
  headers (RTP, extensions, SRTP's tag); at the usual 20 ms that is 16 kbit/s
  per speaker on top of the sound, at 40 ms half of it.

Browsers honour these when they set up their encoder from the remote
description (the page also caps its audio sender itself). aiortc ignores
them, so programs that publish with aiortc's encoder may send more."""

OPUS_MAX_AVERAGE_BITRATE = 24_000
OPUS_FRAME_MS = 40
OPUS_PARAMETERS = {
    "maxaveragebitrate": str(OPUS_MAX_AVERAGE_BITRATE),
    "usedtx": "1",
    "stereo": "0",
    "sprop-stereo": "0",
    "useinbandfec": "1",
}


def _parameters(text: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for item in text.split(";"):
        name, _equals, value = item.strip().partition("=")
        if name:
            parameters[name] = value
    return parameters


def _section_tune(lines: list[str]) -> list[str]:
    """One audio media section with the Opus parameters set."""
    payload_types = [
        line.split(":", 1)[1].split()[0]
        for line in lines
        if line.startswith("a=rtpmap:") and line.split(maxsplit=1)[-1].lower().startswith("opus/")
    ]
    if not payload_types:
        return lines
    result: list[str] = []
    for line in lines:
        if line.startswith(("a=ptime:", "a=maxptime:")):
            continue
        if line.startswith("a=fmtp:"):
            payload_type, _space, text = line[len("a=fmtp:") :].partition(" ")
            if payload_type in payload_types:
                parameters = {**_parameters(text), **OPUS_PARAMETERS}
                line = (
                    "a=fmtp:" + payload_type + " " + ";".join(name + "=" + value for name, value in parameters.items())
                )
        result.append(line)
        if line.startswith("a=rtpmap:"):
            payload_type = line[len("a=rtpmap:") :].split()[0]
            if payload_type in payload_types and not any(
                other.startswith("a=fmtp:" + payload_type + " ") for other in lines
            ):
                fmtp = ";".join(name + "=" + value for name, value in OPUS_PARAMETERS.items())
                result.append("a=fmtp:" + payload_type + " " + fmtp)
    result.append("a=ptime:" + str(OPUS_FRAME_MS))
    return result


def answer_tune(sdp: str) -> str:
    """The worker's answer to a publisher, asking for the lesson's Opus
    encoding in every audio section (other sections are left as they are)."""
    ending = "\r\n" if "\r\n" in sdp else "\n"
    lines = [line for line in sdp.split(ending) if line]
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    tuned: list[str] = list(sections[0])
    for section in sections[1:]:
        tuned.extend(_section_tune(section) if section[0].startswith("m=audio") else section)
    return ending.join(tuned) + ending
