"""The worker's answers ask publishers for the lesson's Opus encoding."""

from lessons.media import opus

OFFERED = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=rtpmap:96 VP8/90000",
        "a=fmtp:96 max-fr=30",
        "",
    ]
)


def test_audio_sections_ask_for_mono_dtx_and_the_bitrate_cap():
    tuned = opus.answer_tune(OFFERED).split("\r\n")
    assert "a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=24000;usedtx=1;stereo=0;sprop-stereo=0" in tuned
    assert [line for line in tuned if line.startswith("a=ptime:")] == ["a=ptime:40"]
    assert tuned.index("a=ptime:40") < tuned.index("m=video 9 UDP/TLS/RTP/SAVPF 96")
    # Video and the other codecs are left as they were.
    assert "a=fmtp:96 max-fr=30" in tuned
    assert "a=rtpmap:0 PCMU/8000" in tuned
    assert tuned[-1] == ""


def test_an_opus_codec_without_parameters_gets_them():
    sdp = "v=0\r\nm=audio 9 RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\n"
    assert opus.answer_tune(sdp) == (
        "v=0\r\nm=audio 9 RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\n"
        "a=fmtp:96 maxaveragebitrate=24000;usedtx=1;stereo=0;sprop-stereo=0;useinbandfec=1\r\na=ptime:40\r\n"
    )
