/**
 * The store's errors advise in the BackupStorageLocation's keys (store/s3-errors.ts), for Velero
 * users; on the command line the same advice names the flags, and where credentials come from.
 * No imports: cli/main.ts loads this for every command, and the plugin process loads cli/main.ts.
 */
const CLI_ADVICE: Array<[RegExp, string]> = [
  [/check the endpoint \(s3Url\)/g, 'check the endpoint (--s3-endpoint)'],
  [/check the region \(region\)/g, 'check the region (--region)'],
  [/give the CA bundle that signed the server's certificate as caCert, or set insecureSkipTLSVerify/g, "give the CA bundle that signed the server's certificate with --ca-cert-file, or pass --insecure-skip-tls-verify"],
  [/\): set the region/g, '): set --region'],
  [/the CA bundle caCertFile /g, 'the CA bundle --ca-cert-file '],
  [
    /(no usable S3 credentials[^\n]*)/,
    '$1: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile (AWS_PROFILE or --profile) of ~/.aws/credentials or of the file AWS_SHARED_CREDENTIALS_FILE names (a Velero location\'s credentials file is one)',
  ],
];

export function inCliTerms(message: string): string {
  return CLI_ADVICE.reduce((m, [pattern, replacement]) => m.replace(pattern, replacement), message);
}
