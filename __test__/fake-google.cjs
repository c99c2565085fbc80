'use strict'
// Fake Google token services on loopback for the CLI tests, as strict as the real ones where
// it matters: an OAuth2 token endpoint (`/token`: the JWT-bearer grant with its RS256 signature,
// `aud`, `iss` and scopes checked; the refresh-token grant), a Security Token Service (`/sts`),
// and a metadata server (`/computeMetadata/v1/...`: only `Metadata-Flavor: Google` requests,
// and it says so in its answer), and the Firebase Realtime Database Management API's instance list
// (`/v1beta/projects/<fake.project>/locations/-/instances`: `fake.instances`, `fake.pageSize` a
// page, only to a token granted for the firebase.readonly scope, which gets `ro-` in front; another
// project is a 403, as the API says it). Every grant hands out `fake.token`. The Rust tests have their
// own (tests/support/google.rs) for the finer points: impersonation, URL and executable sources.

const http = require('node:http')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const KEY_PEM = fs.readFileSync(path.join(__dirname, '..', 'tests', 'fixtures', 'test-sa-key.pem'), 'utf8')
const SA_EMAIL = 'migrations@test-project.iam.gserviceaccount.com'
const DB_SCOPES = 'https://www.googleapis.com/auth/firebase.database https://www.googleapis.com/auth/userinfo.email'
const READONLY_SCOPE = 'https://www.googleapis.com/auth/firebase.readonly'
const USER = { client_id: 'client-1.apps.googleusercontent.com', client_secret: 'SECRET-client-secret', refresh_token: 'SECRET-refresh-token' }
const AUDIENCE = '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/github'
const SUBJECT_TOKEN = 'SECRET-subject-token.eyJpc3MiOiJnaXRodWIifQ'
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'

function b64url(s) {
  return Buffer.from(s, 'base64url')
}

async function startFakeGoogle() {
  const publicKey = crypto.createPublicKey(KEY_PEM)
  const fake = { token: 'ya29.SECRET-access-1', calls: {}, base: '', project: '', instances: [], pageSize: 100 }
  const count = (k) => (fake.calls[k] = (fake.calls[k] || 0) + 1)
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      const send = (status, obj, headers = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers })
        res.end(JSON.stringify(obj))
      }
      const grant = (scope = DB_SCOPES) => send(200, { access_token: scope === READONLY_SCOPE ? `ro-${fake.token}` : fake.token, expires_in: 3600, token_type: 'Bearer' })
      const url = new URL(req.url, fake.base)
      const form = new URLSearchParams(body)
      if (req.method === 'POST' && url.pathname === '/token') {
        if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
          count('jwt-bearer')
          const [h, c, s] = (form.get('assertion') || '').split('.')
          const ok = s && crypto.verify('RSA-SHA256', Buffer.from(`${h}.${c}`), publicKey, b64url(s))
          if (!ok) return send(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' })
          const claims = JSON.parse(b64url(c).toString())
          if (claims.aud !== `${fake.base}/token` || claims.iss !== SA_EMAIL || ![DB_SCOPES, READONLY_SCOPE].includes(claims.scope)) {
            return send(400, { error: 'invalid_grant', error_description: 'Invalid JWT claims.' })
          }
          return grant(claims.scope)
        }
        if (form.get('grant_type') === 'refresh_token') {
          count('refresh_token')
          if (Object.entries(USER).some(([k, v]) => form.get(k) !== v)) return send(400, { error: 'invalid_grant', error_description: 'Bad Request' })
          return grant()
        }
        return send(400, { error: 'unsupported_grant_type' })
      }
      if (req.method === 'POST' && url.pathname === '/sts') {
        count('sts')
        if (
          form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange' ||
          form.get('audience') !== AUDIENCE ||
          form.get('subject_token') !== SUBJECT_TOKEN ||
          form.get('subject_token_type') !== ID_TOKEN_TYPE ||
          form.get('scope') !== DB_SCOPES
        ) {
          return send(400, { error: 'invalid_grant', error_description: 'The ID Token could not be verified.' })
        }
        return grant()
      }
      if (req.method === 'GET' && url.pathname === '/computeMetadata/v1/instance/service-accounts/default/token') {
        count('metadata')
        if (req.headers['metadata-flavor'] !== 'Google') return send(403, { error: 'Missing Metadata-Flavor:Google header.' })
        if ((url.searchParams.get('scopes') || '').split(',').join(' ') !== DB_SCOPES) return send(400, { error: 'bad scopes' })
        return send(200, { access_token: fake.token, expires_in: 3599, token_type: 'Bearer' }, { 'metadata-flavor': 'Google' })
      }
      if (req.method === 'GET' && url.pathname.startsWith('/v1beta/projects/')) {
        count('instances')
        if (req.headers.authorization !== `Bearer ro-${fake.token}`) {
          return send(401, { error: { code: 401, status: 'UNAUTHENTICATED', message: 'Request had invalid authentication credentials.' } })
        }
        if (url.pathname !== `/v1beta/projects/${fake.project}/locations/-/instances`) {
          return send(403, { error: { code: 403, status: 'PERMISSION_DENIED', message: 'The caller does not have permission' } })
        }
        const start = Number((url.searchParams.get('pageToken') || 'after-0').slice('after-'.length))
        const end = Math.min(start + Math.min(fake.pageSize, Number(url.searchParams.get('pageSize') || 100)), fake.instances.length)
        const page = { instances: fake.instances.slice(start, end) }
        if (end < fake.instances.length) page.nextPageToken = `after-${end}`
        return send(200, page)
      }
      send(404, { error: 'not found' })
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  fake.base = `http://127.0.0.1:${port}`
  fake.host = `127.0.0.1:${port}`
  fake.close = () => new Promise((resolve) => server.close(resolve))
  fake.serviceAccount = () => ({
    type: 'service_account',
    project_id: 'test-project',
    private_key_id: 'k1',
    private_key: KEY_PEM,
    client_email: SA_EMAIL,
    client_id: '1',
    token_uri: `${fake.base}/token`,
  })
  fake.authorizedUser = () => ({ type: 'authorized_user', ...USER, token_uri: `${fake.base}/token` })
  fake.externalAccount = (subjectFile) => ({
    type: 'external_account',
    audience: AUDIENCE,
    subject_token_type: ID_TOKEN_TYPE,
    token_url: `${fake.base}/sts`,
    credential_source: { file: subjectFile },
  })
  return fake
}

module.exports = { startFakeGoogle, SA_EMAIL, SUBJECT_TOKEN, USER, KEY_PEM }
