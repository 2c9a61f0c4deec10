"""moto server (no-auth mode) behind a check of presigned URLs, for the restore tests.

In auth mode moto answers every presigned URL with 500 (KeyError HTTP_AUTHORIZATION: its access
control reads only the Authorization header), and in no-auth mode it serves them without looking
at the signature or the expiry. This runs the same moto app as
`python3 -m moto.server`, wrapped in a WSGI middleware that checks every request carrying
X-Amz-Signature the way S3 does, with botocore's own SigV4 query signer (the code moto uses for
header signatures): the credential's access key and scope, the date and expiry, and the signature
over the method, the path as sent, the query and the signed headers. A request that fails gets
S3's 403 answer; one that passes, and every request without a query signature, goes to moto.

Usage: python3 moto_presign_check.py HOST PORT, with PRESIGN_CREDENTIALS="ACCESS_KEY:SECRET" and
PRESIGN_REGION in the environment (PYTHONPATH: moto and botocore).
"""

import datetime
import os
import sys
from urllib.parse import parse_qsl, quote, urlencode
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

AUTH_PARAMS = {
    'X-Amz-Algorithm',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-SignedHeaders',
    'X-Amz-Security-Token',
    'X-Amz-Signature',
}
MAX_EXPIRES = 7 * 24 * 3600
SKEW = datetime.timedelta(minutes=15)


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def header(environ, name):
    if name == 'host':
        return environ.get('HTTP_HOST', '')
    key = 'HTTP_' + name.upper().replace('-', '_')
    if name in ('content-type', 'content-length'):
        key = name.upper().replace('-', '_')
    return environ.get(key)


def check(environ, secrets, region, now):
    raw = environ.get('REQUEST_URI') or environ.get('RAW_URI') or ''
    path, _, query = raw.partition('?')
    params = parse_qsl(query, keep_blank_values=True)
    auth = {k: v for k, v in params if k in AUTH_PARAMS}
    rest = [(k, v) for k, v in params if k not in AUTH_PARAMS]
    if auth.get('X-Amz-Algorithm') != 'AWS4-HMAC-SHA256':
        raise Refused('AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256')
    scope = auth.get('X-Amz-Credential', '').split('/')
    if len(scope) != 5 or scope[3] != 's3' or scope[4] != 'aws4_request':
        raise Refused('AuthorizationQueryParametersError', 'malformed X-Amz-Credential')
    access_key, day, signed_region = scope[0], scope[1], scope[2]
    if access_key not in secrets:
        raise Refused('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
    if signed_region != region:
        raise Refused('AuthorizationQueryParametersError', f"the credential's region {signed_region} is wrong; expecting {region}")
    stamp = auth.get('X-Amz-Date', '')
    try:
        signed_at = datetime.datetime.strptime(stamp, '%Y%m%dT%H%M%SZ')
        expires = int(auth.get('X-Amz-Expires', ''))
    except ValueError:
        raise Refused('AuthorizationQueryParametersError', 'malformed X-Amz-Date or X-Amz-Expires')
    if day != stamp[:8]:
        raise Refused('AuthorizationQueryParametersError', 'the credential date is not the X-Amz-Date')
    if not 1 <= expires <= MAX_EXPIRES:
        raise Refused('AuthorizationQueryParametersError', 'X-Amz-Expires must be from 1 to 604800')
    if signed_at > now + SKEW:
        raise Refused('AccessDenied', 'Request is not valid yet')
    if now > signed_at + datetime.timedelta(seconds=expires):
        raise Refused('AccessDenied', 'Request has expired')
    signed_headers = auth.get('X-Amz-SignedHeaders', '').split(';')
    headers = {}
    for name in signed_headers:
        value = header(environ, name)
        if value is None:
            raise Refused('AccessDenied', f'the signed header {name} is missing')
        headers[name] = value
    # The request as the signer saw it: the path exactly as sent, the other query parameters,
    # the signed headers; botocore then adds the auth parameters back (the same values) and signs.
    url = f"http://{headers.get('host', '')}{path}"
    if rest:
        url += '?' + urlencode(rest, quote_via=quote)
    request = AWSRequest(method=environ['REQUEST_METHOD'], url=url, headers=headers)
    request.context['timestamp'] = stamp
    signer = S3SigV4QueryAuth(
        Credentials(access_key, secrets[access_key], auth.get('X-Amz-Security-Token')), 's3', region, expires=expires
    )
    signer._modify_request_before_signing(request)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != auth.get('X-Amz-Signature'):
        raise Refused(
            'SignatureDoesNotMatch',
            'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        )


def presign_checked(app, secrets, region):
    def middleware(environ, start_response):
        if 'X-Amz-Signature=' in environ.get('QUERY_STRING', ''):
            try:
                check(environ, secrets, region, datetime.datetime.utcnow())
            except Refused as refused:
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<Error><Code>{refused.code}</Code><Message>{escape(refused.message)}</Message></Error>'
                ).encode()
                start_response('403 Forbidden', [('Content-Type', 'application/xml'), ('Content-Length', str(len(body)))])
                return [body]
        return app(environ, start_response)

    return middleware


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    access_key, _, secret = os.environ['PRESIGN_CREDENTIALS'].partition(':')
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, presign_checked(app, {access_key: secret}, os.environ['PRESIGN_REGION']), threaded=True)


if __name__ == '__main__':
    main()
