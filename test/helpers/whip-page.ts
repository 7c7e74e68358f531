/**
 * Page code for WHIP publishers in Chromium, as strings for `page.evaluate` (the tsconfig has
 * no DOM lib): the pieces every WHIP page repeats, so tests and benches differ only in what
 * they publish and what they check.
 */

/** Page code: `stream`, Chromium's fake camera (640x360 at 30 fps) and microphone. */
export const FAKE_CAMERA = 'const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });';

/**
 * Page code: `pc`, a peer connection sending every track of `stream` (a page variable), with
 * its local offer set and every ICE candidate gathered (WHIP without trickle ICE posts that
 * complete offer). Contains `await pc.setLocalDescription`, which a caller may prefix (codec
 * preferences).
 */
export const SEND_ONLY_OFFER = `const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
  });`;

/** Page code: waits until `pc` is connected; rejects when it fails. */
export const AWAIT_CONNECTED = `await new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === 'connected') resolve();
      if (pc.connectionState === 'failed') reject(new Error('WebRTC connection failed'));
    };
    pc.onconnectionstatechange = check;
    check();
  });`;
