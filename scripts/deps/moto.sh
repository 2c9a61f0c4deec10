# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# moto server 5.2.4 (sid python3-moto, pure Python) and its dependencies, extracted into
# .cache/moto/root and run with the machine's /usr/bin/python3 (bookworm's 3.11): the S3 server of
# the integration tests, in auth mode (SigV4 enforced). bookworm has no python3-moto and PyPI is not
# used. The compiled dependencies (yaml, cryptography, cffi) come from bookworm so that they match
# bookworm's Python; moto and the boto stack are arch:all from sid.
MOTO_BOOKWORM_PKGS=(python3-flask python3-werkzeug python3-jinja2 python3-markupsafe python3-itsdangerous python3-click
  python3-blinker python3-requests python3-urllib3 python3-idna python3-certifi python3-charset-normalizer python3-chardet
  python3-responses python3-dateutil python3-six python3-jmespath python3-xmltodict python3-yaml python3-cryptography
  python3-cffi-backend python3-flask-cors python3-toml)
MOTO_SID_PKGS=(python3-moto python3-boto3 python3-botocore python3-s3transfer python3-antlr4)

dep_moto() {
  local dest=$CACHE/moto
  if [ ! -e "$dest/.complete" ]; then
    rm -rf "$dest/root"
    fetch_debs bookworm "$dest/root" "${MOTO_BOOKWORM_PKGS[@]}"
    fetch_debs sid "$dest/root" "${MOTO_SID_PKGS[@]}"
    rm -rf "$dest/root/usr/share/doc" "$dest/root/usr/share/man"
    PYTHONPATH=$dest/root/usr/lib/python3/dist-packages /usr/bin/python3 -c 'import moto.server, moto.s3, moto.iam' >&2
    touch "$dest/.complete"
  fi
}
