import assert from 'node:assert/strict';
import { it } from 'node:test';
import Docker from 'dockerode';
import { ensureSandboxImage, fromRegistry } from '../../infra/sandbox-image.ts';

it('knows which tags name a registry it could pull from', () => {
  assert.equal(fromRegistry('forge-sandbox:1'), false);
  assert.equal(fromRegistry('library/forge-sandbox:1'), false);
  assert.equal(fromRegistry('registry.example.com/forge/sandbox:1'), true);
  assert.equal(fromRegistry('localhost:5000/forge-sandbox:1'), true);
});

it('tries the registry for a registry tag and, with none reachable, builds the image locally', async () => {
  const docker = new Docker();
  // Port 9 on loopback: nothing listens, so the pull is refused at once (no traffic leaves the machine).
  const tag = `127.0.0.1:9/forge-sandbox-pulltest:${process.pid}`;
  try {
    const first = await ensureSandboxImage(docker, { tag });
    assert.equal(first.built, true, 'no registry answered, so it was built');
    const labels = (await docker.getImage(tag).inspect()).Config?.Labels ?? {};
    assert.equal(labels['forge.sandbox-image'], '1');
    const again = await ensureSandboxImage(docker, { tag });
    assert.deepEqual([again.built, again.imageId], [false, first.imageId], 'present and current: nothing to do');
  } finally {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  }
});
