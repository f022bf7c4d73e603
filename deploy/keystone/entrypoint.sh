#!/bin/sh
# Set Keystone up on first start (schema, keys, admin, the placement service
# user with role `service`, the placement endpoints), then serve it.
set -eu
mkdir -p /var/lib/keystone
if [ ! -f /var/lib/keystone/.bootstrapped ]; then
  keystone-manage db_sync
  keystone-manage fernet_setup --keystone-user root --keystone-group root
  keystone-manage credential_setup --keystone-user root --keystone-group root
  keystone-manage bootstrap --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" \
    --bootstrap-public-url "$KEYSTONE_PUBLIC_URL" \
    --bootstrap-internal-url "$KEYSTONE_INTERNAL_URL" \
    --bootstrap-admin-url "$KEYSTONE_INTERNAL_URL" --bootstrap-region-id RegionOne
  # The users and the catalog are made through the API once it answers.
  (python /usr/local/bin/bootstrap.py && touch /var/lib/keystone/.bootstrapped) &
fi
# oslo.config parses sys.argv: keep gunicorn's arguments away from it.
printf 'import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application\n' \
  > /tmp/keystone_app.py
exec gunicorn -b 0.0.0.0:5000 -w 2 --chdir /tmp keystone_app:application
