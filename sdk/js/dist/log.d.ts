export type Fields = Readonly<Record<string, unknown>>;
export declare function trace(message: string, fields?: Fields): void;
export declare function debug(message: string, fields?: Fields): void;
export declare function info(message: string, fields?: Fields): void;
export declare function warn(message: string, fields?: Fields): void;
export declare function error(message: string, fields?: Fields): void;
