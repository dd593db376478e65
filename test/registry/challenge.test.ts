import test from 'ava';
import { parseChallenges, pickChallenge } from '../../src/registry/auth/challenge.ts';
import { parseRetryAfter } from '../../src/registry/transport.ts';
import { parseRangeEnd, withDigestParam } from '../../src/registry/upload.ts';
import { parseErrorBody, redact } from '../../src/registry/registry-error.ts';

test('a Bearer challenge with a comma inside a quoted scope', (t) => {
  const [c] = parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:acme/app:pull,push"');
  t.deepEqual(c, { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:acme/app:pull,push' } });
});

test('escaped quotes and backslashes in quoted strings', (t) => {
  const [c] = parseChallenges('Bearer realm="https://x/t",error="invalid_token",error_description="the \\"token\\" expired \\\\ sorry"');
  t.is(c!.params.error_description, 'the "token" expired \\ sorry');
});

test('several challenges in one header, with spaces around "=" and unquoted values', (t) => {
  const cs = parseChallenges('Basic realm="Registry Realm", Bearer realm = "https://a/token" , service=reg.example , Newauth realm="apps", type=1, title="Login to \\"apps\\""');
  t.deepEqual(cs.map((c) => c.scheme), ['basic', 'bearer', 'newauth']);
  t.is(cs[1]!.params.service, 'reg.example');
  t.is(cs[1]!.params.realm, 'https://a/token');
  t.is(cs[2]!.params.title, 'Login to "apps"');
  t.is(cs[2]!.params.type, '1');
  t.is(pickChallenge(cs)!.scheme, 'bearer');
});

test('token68 challenges, scheme case and parameter name case', (t) => {
  const cs = parseChallenges('Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6iBwMFACAAAACjggR5==, BASIC Realm="r"');
  t.is(cs[0]!.scheme, 'negotiate');
  t.is(cs[0]!.token68, 'YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6iBwMFACAAAACjggR5==');
  t.deepEqual(cs[1], { scheme: 'basic', params: { realm: 'r' } });
});

test('empty and malformed headers give no challenge, never a hang', (t) => {
  t.deepEqual(parseChallenges(''), []);
  t.deepEqual(parseChallenges(null), []);
  t.is(parseChallenges('Bearer').length, 1);
  t.is(parseChallenges('Bearer realm="unterminated').length, 1);
  t.notThrows(() => parseChallenges('"",,,=,= "x" @@'));
});

test('Retry-After in seconds and as an HTTP date', (t) => {
  t.is(parseRetryAfter('3'), 3000);
  const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
  t.is(parseRetryAfter('Wed, 21 Oct 2026 07:28:05 GMT', now), 5000);
  t.is(parseRetryAfter(null), undefined);
  t.is(parseRetryAfter('soon'), undefined);
});

test('digest= is added to Locations that already carry a query', (t) => {
  const u = withDigestParam(new URL('https://r.example/v2/a/blobs/uploads/x?_state=abc%3D%3D&other=1'), 'sha256:00');
  t.is(u.searchParams.get('_state'), 'abc==');
  t.is(u.searchParams.get('other'), '1');
  t.is(u.searchParams.get('digest'), 'sha256:00');
  t.is(withDigestParam(new URL('https://r.example/up/1'), 'sha256:ff').search, '?digest=sha256%3Aff');
});

test('Range headers with and without "bytes="', (t) => {
  t.is(parseRangeEnd('0-1023'), 1023);
  t.is(parseRangeEnd('bytes=0-9'), 9);
  t.is(parseRangeEnd(null), undefined);
  t.is(parseRangeEnd('garbage'), undefined);
});

test('registry error bodies: the spec shape, OAuth2 shape, and plain text', (t) => {
  t.deepEqual(parseErrorBody('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}'), [
    { code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'x' } },
  ]);
  t.deepEqual(parseErrorBody('{"error":"invalid_grant","error_description":"bad refresh token"}'), [{ code: 'invalid_grant', message: 'bad refresh token' }]);
  t.deepEqual(parseErrorBody('<html>Bad Gateway</html>'), [{ code: 'UNKNOWN', message: '<html>Bad Gateway</html>' }]);
});

test('redaction covers the secret and its base64 form', (t) => {
  const text = `password hunter22 and ${Buffer.from('hunter22').toString('base64')}`;
  t.is(redact(text, ['hunter22']), 'password *** and ***');
});
