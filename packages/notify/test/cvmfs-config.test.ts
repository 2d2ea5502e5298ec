// The cvmfs client configuration as msgnotify -s and the gateway read it: a fake /etc/cvmfs in a temp dir, its files
// sourced by /bin/sh in cvmfs's order, the server URLs and master keys that come out.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CvmfsConfigError, expandServerUrl, PublicKeyError, readCvmfsClientConfig, readMasterKeys } from '@msgbricks/notify';
import { useTempDir } from '@msgbricks/test-support';

const tmp = useTempDir('notify-cvmfs-config-');

function write(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
}

describe('cvmfs client configuration', () => {
  test('cvmfs config - later files override earlier ones in cvmfs order; @fqrn@ and @org@; several URLs', async () => {
    const root = path.join(tmp.path, 'etc-cvmfs');
    const mount = path.join(tmp.path, 'cvmfs');
    write(root, {
      'default.conf': `CVMFS_MOUNT_DIR=${mount}\nCVMFS_SERVER_URL=http://default/@fqrn@\nCVMFS_CONFIG_REPOSITORY=config.example.org\n`,
      'default.d/50-site.conf': 'CVMFS_SERVER_URL=http://default-d/@fqrn@\n',
      'default.local': '# a comment\nexport CVMFS_KEYS_DIR=/nowhere\n',
      // cvmfs sources them with /bin/sh: parameters, if, and CVMFS_FQRN work
      'domain.d/example.org.conf':
        'if [ "$CVMFS_FQRN" = atlas.example.org ]; then S=s1; fi\nCVMFS_SERVER_URL="http://$S.example.org/cvmfs/@fqrn@;http://s2/@org@/x"\n',
      'config.d/other.example.org.conf': 'CVMFS_SERVER_URL=http://not-this-one\n',
    });
    // The config repository's domain.d comes before ours, its config.d before ours too: ours wins, its fills gaps.
    write(path.join(mount, 'config.example.org', 'etc', 'cvmfs'), {
      'default.conf': 'CVMFS_PUBLIC_KEY=/from/config-repo.pub\nCVMFS_CONFIG_REPOSITORY=moved.example.org\n',
      'domain.d/example.org.conf': 'CVMFS_SERVER_URL=http://config-repo-domain\n',
      'config.d/atlas.example.org.conf': `CVMFS_KEYS_DIR=${root}/keys/example.org\n`,
    });
    write(root, { 'keys/example.org/b.pub': 'B', 'keys/example.org/a.pub': 'A', 'keys/example.org/readme': 'x' });
    const c = await readCvmfsClientConfig('atlas.example.org', root);
    expect(c.serverUrls).toEqual(['http://s1.example.org/cvmfs/atlas.example.org', 'http://s2/atlas/x']);
    expect(c.sources.CVMFS_SERVER_URL).toBe(path.join(root, 'domain.d/example.org.conf'));
    // CVMFS_PUBLIC_KEY (from the config repository) comes before CVMFS_KEYS_DIR, as in cvmfs.
    expect(c.keyFiles).toEqual(['/from/config-repo.pub']);
    expect(c.keysFrom).toBe(`CVMFS_PUBLIC_KEY in ${path.join(mount, 'config.example.org/etc/cvmfs/default.conf')}`);
    expect(c.files).toEqual([
      path.join(root, 'default.conf'),
      path.join(root, 'default.d/50-site.conf'),
      path.join(mount, 'config.example.org/etc/cvmfs/default.conf'),
      path.join(root, 'default.local'),
      path.join(mount, 'config.example.org/etc/cvmfs/domain.d/example.org.conf'),
      path.join(root, 'domain.d/example.org.conf'),
      path.join(mount, 'config.example.org/etc/cvmfs/config.d/atlas.example.org.conf'),
    ]);
    // Set in default.local (as sites do): the config repository's default.conf, read before, is not; the rest is.
    const local = path.join(tmp.path, 'etc-local');
    write(local, {
      'default.conf': `CVMFS_MOUNT_DIR=${mount}\n`,
      'default.local': 'CVMFS_CONFIG_REPOSITORY=config.example.org\n',
    });
    expect((await readCvmfsClientConfig('atlas.example.org', local)).files).toEqual([
      path.join(local, 'default.conf'),
      path.join(local, 'default.local'),
      path.join(mount, 'config.example.org/etc/cvmfs/domain.d/example.org.conf'),
      path.join(mount, 'config.example.org/etc/cvmfs/config.d/atlas.example.org.conf'),
    ]);
    // Another repository of the domain, with a config.d file of its own.
    const other = await readCvmfsClientConfig('other.example.org', root);
    expect(other.serverUrls).toEqual(['http://not-this-one']);
  });

  test('cvmfs config - keys: CVMFS_PUBLIC_KEY (colon-separated), else CVMFS_KEYS_DIR/*.pub, else <root>/keys/*.pub', async () => {
    const root = path.join(tmp.path, 'keys-root');
    write(root, {
      'keys/z.pub': 'Z',
      'keys/m.pub': 'M',
      'keys/sub/ignored.pub': 'I',
      'keys/dir/one.pub': 'ONE',
      'config.d/a.example.org.conf': `CVMFS_PUBLIC_KEY=${root}/keys/z.pub:${root}/keys/m.pub\nCVMFS_KEYS_DIR=${root}/keys/dir\n`,
      'config.d/b.example.org.conf': `CVMFS_KEYS_DIR=${root}/keys/dir\n`,
    });
    expect((await readCvmfsClientConfig('a.example.org', root)).keyFiles).toEqual([`${root}/keys/z.pub`, `${root}/keys/m.pub`]);
    expect((await readCvmfsClientConfig('b.example.org', root)).keyFiles).toEqual([`${root}/keys/dir/one.pub`]);
    const c = await readCvmfsClientConfig('c.example.org', root);
    expect(c.keyFiles).toEqual([`${root}/keys/m.pub`, `${root}/keys/z.pub`]);
    expect(c.keysFrom).toBe(`the default ${root}/keys/*.pub`);
    expect(c.serverUrls).toEqual([]);
    // A stratum 0's own client.conf (what cvmfs_swissknife notify -s reads) comes last.
    write(root, {
      'repositories.d/c.example.org/client.conf': `CVMFS_SERVER_URL=http://localhost/cvmfs/c.example.org\nCVMFS_PUBLIC_KEY=${root}/keys/m.pub\n`,
    });
    const s0 = await readCvmfsClientConfig('c.example.org', root);
    expect(s0).toMatchObject({ serverUrls: ['http://localhost/cvmfs/c.example.org'], keyFiles: [`${root}/keys/m.pub`] });
    expect(await readMasterKeys([`${root}/keys/dir`, `${root}/keys/z.pub`])).toEqual(['ONE', 'Z']);
  });

  test('cvmfs config - nothing there is no error; a file the shell refuses is named with its line; a missing key is named', async () => {
    const empty = await readCvmfsClientConfig('x.example.org', path.join(tmp.path, 'does-not-exist'));
    expect(empty).toMatchObject({ serverUrls: [], keyFiles: [], files: [] });
    const root = path.join(tmp.path, 'broken');
    write(root, { 'default.conf': 'A=1\nif then fi (\n' });
    const err = await readCvmfsClientConfig('x.example.org', root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CvmfsConfigError);
    expect((err as CvmfsConfigError).code).toBe('ERR_NOTIFY_CVMFS_CONFIG');
    // dash: "/bin/sh: LINE: FILE: Syntax error: ..."
    expect((err as Error).message).toMatch(/: 2: \S+\/broken\/default\.conf: Syntax error/);
    const key = await readMasterKeys([path.join(root, 'nope.pub')]).catch((e: unknown) => e);
    expect(key).toBeInstanceOf(PublicKeyError);
    expect((key as Error).message).toMatch(/nope\.pub \(ENOENT\)/);
  });

  test('cvmfs config - a file printing on stdout does not disturb what is read', async () => {
    const root = path.join(tmp.path, 'chatty');
    write(root, { 'default.conf': 'echo hello\nprintf "a\\0b"\nCVMFS_SERVER_URL=http://s/@fqrn@\n' });
    expect((await readCvmfsClientConfig('r.example.org', root)).serverUrls).toEqual(['http://s/r.example.org']);
    expect(expandServerUrl('http://@org@/cvmfs/@fqrn@', 'lhcb.cern.ch')).toBe('http://lhcb/cvmfs/lhcb.cern.ch');
  });
});
