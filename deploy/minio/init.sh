#!/bin/sh
# compose.yaml's minio-bucket job (image minio/mc), run at every start once MinIO answers: the
# results bucket, the policy cure-results-rw (cure-api-policy.json: that bucket's objects, nothing
# else) and the API's own user with only that policy, so the key the API signs links with is not
# root's. Each step can run again: bucket and user are kept, the policy and secret refreshed.
set -eu
mc alias set root http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "root/$CURE_S3_BUCKET"
mc admin policy create root cure-results-rw /etc/cure/minio/cure-api-policy.json
mc admin user add root "$CURE_S3_ACCESS_KEY_ID" "$CURE_S3_SECRET_ACCESS_KEY"
# MinIO answers an error when the policy is attached already: then check that it is (with the
# shell alone: the image has few tools).
if ! mc admin policy attach root cure-results-rw --user "$CURE_S3_ACCESS_KEY_ID"; then
  case "$(mc admin user info root "$CURE_S3_ACCESS_KEY_ID")" in
    *cure-results-rw*) ;;
    *) echo "the policy cure-results-rw is not attached to $CURE_S3_ACCESS_KEY_ID" >&2; exit 1 ;;
  esac
fi
echo "bucket $CURE_S3_BUCKET and its user $CURE_S3_ACCESS_KEY_ID are ready"
